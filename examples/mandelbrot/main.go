// Command mandelbrot renders one tile of the Mandelbrot set as a PNG into
// /outputs (or the directory given by -o).
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
)

func main() {
	w := flag.Int("w", 256, "width in pixels")
	h := flag.Int("h", 256, "height in pixels")
	cx := flag.Float64("x", -0.5, "centre, real part")
	cy := flag.Float64("y", 0, "centre, imaginary part")
	span := flag.Float64("span", 3, "width of the tile in the complex plane")
	iters := flag.Int("iter", 256, "maximum iterations per pixel")
	out := flag.String("o", "/outputs", "output directory")
	flag.Parse()
	img := image.NewPaletted(image.Rect(0, 0, *w, *h), palette())
	scale := *span / float64(*w)
	for py := 0; py < *h; py++ {
		for px := 0; px < *w; px++ {
			x0 := *cx + (float64(px)-float64(*w)/2)*scale
			y0 := *cy + (float64(py)-float64(*h)/2)*scale
			x, y, i := 0.0, 0.0, 0
			for ; i < *iters && x*x+y*y <= 4; i++ {
				x, y = x*x-y*y+x0, 2*x*y+y0
			}
			idx := uint8(0)
			if i < *iters {
				idx = uint8(1 + i%255)
			}
			img.SetColorIndex(px, py, idx)
		}
	}
	path := filepath.Join(*out, "mandelbrot.png")
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mandelbrot:", err)
		os.Exit(1)
	}
	if err := png.Encode(f, img); err != nil {
		fmt.Fprintln(os.Stderr, "mandelbrot:", err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "mandelbrot:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%dx%d)\n", path, *w, *h)
}

func palette() color.Palette {
	p := color.Palette{color.Black}
	for i := 0; i < 255; i++ {
		p = append(p, color.RGBA{uint8(i * 7), uint8(i * 3), uint8(255 - i), 255})
	}
	return p
}
