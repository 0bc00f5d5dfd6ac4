// Command misbehave breaks the sandbox's rules on purpose, one way per
// mode, so that tests can check each limit holds:
//
//	loop             spin forever
//	membomb          allocate until memory runs out
//	stdout | stderr  write endlessly to stdout or stderr
//	outputs          write endlessly into /outputs
//	read PATH...     print the first bytes of each PATH, or the error
//	symlink TARGET   try to link /outputs/link to TARGET
//	sleep D          sleep for the duration D, then print the clock
//	exit N           exit with code N
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: misbehave loop|membomb|stdout|stderr|outputs|read|symlink|sleep|exit ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "loop":
		fmt.Println("looping")
		n := 0
		for {
			n++
		}
	case "membomb":
		var keep [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = byte(i)
			}
			keep = append(keep, b)
		}
	case "stdout", "stderr":
		w := os.Stdout
		if os.Args[1] == "stderr" {
			w = os.Stderr
		}
		line := []byte(strings.Repeat("flood ", 100) + "\n")
		for {
			w.Write(line)
		}
	case "outputs":
		f, err := os.Create("/outputs/flood")
		if err != nil {
			fmt.Println("create:", err)
			os.Exit(1)
		}
		chunk := make([]byte, 64<<10)
		for {
			f.Write(chunk)
		}
	case "read":
		for _, p := range os.Args[2:] {
			b, err := os.ReadFile(p)
			if err != nil {
				fmt.Printf("%s: error\n", p)
				continue
			}
			fmt.Printf("%s: read %d bytes: %q\n", p, len(b), b[:min(len(b), 32)])
		}
	case "symlink":
		err := os.Symlink(os.Args[2], "/outputs/link")
		fmt.Printf("symlink: %v\n", err != nil)
	case "sleep":
		d, err := time.ParseDuration(os.Args[2])
		if err != nil {
			os.Exit(2)
		}
		t := time.Now()
		time.Sleep(d)
		fmt.Printf("slept %v\n", time.Since(t) >= d)
	case "exit":
		n, _ := strconv.Atoi(os.Args[2])
		os.Exit(n)
	default:
		fmt.Fprintf(os.Stderr, "misbehave: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
