// Command wordcount counts lines, words and bytes of every file under a
// directory (default /inputs) and prints the totals and the most frequent
// words, in a deterministic order.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
)

func main() {
	top := flag.Int("top", 10, "how many of the most frequent words to print")
	flag.Parse()
	root := "/inputs"
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	counts := map[string]int{}
	var files, lines, words, bytes int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		files++
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			lines++
			bytes += len(line) + 1
			for _, w := range strings.FieldsFunc(line, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				words++
				counts[strings.ToLower(w)]++
			}
		}
		return sc.Err()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
	fmt.Printf("%d files, %d lines, %d words, %d bytes\n", files, lines, words, bytes)
	type wc struct {
		w string
		n int
	}
	all := make([]wc, 0, len(counts))
	for w, n := range counts {
		all = append(all, wc{w, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].w < all[j].w
	})
	for i := 0; i < len(all) && i < *top; i++ {
		fmt.Printf("%7d %s\n", all[i].n, all[i].w)
	}
}
