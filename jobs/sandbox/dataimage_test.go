package sandbox

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The image splitData builds from a real module is byte for byte the
// memory the runtime makes when it applies the data segments itself.
func TestSplitDataMatchesInstantiation(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"hello", "wordcount"} {
		t.Run(name, func(t *testing.T) {
			code, err := os.ReadFile(example(t, name))
			if err != nil {
				t.Fatal(err)
			}
			stripped, img, ok := splitData(code)
			if !ok {
				t.Fatal("splitData declined a Go module")
			}
			if len(img.bytes) == 0 || len(stripped) >= len(code) {
				t.Fatalf("image of %d bytes, stripped %d of %d bytes", len(img.bytes), len(stripped), len(code))
			}
			want := initialMemory(t, ctx, code)
			got := initialMemory(t, ctx, stripped)
			if bytes.Count(got, []byte{0}) != len(got) {
				t.Fatal("the stripped module's memory is not all zeros")
			}
			copy(got[img.off:], img.bytes)
			if !bytes.Equal(got, want) {
				t.Fatal("memory with the image differs from the memory the data segments make")
			}
		})
	}
}

// initialMemory instantiates code without running it and returns a copy
// of its memory.
func initialMemory(t *testing.T, ctx context.Context, code []byte) []byte {
	t.Helper()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	b, ok := mod.Memory().Read(0, mod.Memory().Size())
	if !ok {
		t.Fatal("cannot read the memory")
	}
	return bytes.Clone(b)
}

// wasmModule assembles a module from sections.
func wasmModule(sections ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		out = append(out, s...)
	}
	return out
}

func wasmSection(id byte, body ...byte) []byte {
	return append([]byte{id, byte(len(body))}, body...) // bodies here are < 128 bytes
}

// memory1 declares one memory of one page.
var memory1 = wasmSection(wasmSectionMemory, 1, 0, 1)

func TestSplitDataPlainSegments(t *testing.T) {
	code := wasmModule(memory1, wasmSection(wasmSectionData,
		2,
		0, wasmOpI32Const, 16, wasmOpEnd, 4, 'a', 'b', 'c', 'd',
		0, wasmOpI32Const, 18, wasmOpEnd, 3, 'X', 'Y', 'Z', // over the first one's tail
	))
	stripped, img, ok := splitData(code)
	if !ok {
		t.Fatal("declined plain segments")
	}
	if img.off != 16 || string(img.bytes) != "abXYZ" {
		t.Fatalf("image at %d = %q, want \"abXYZ\" at 16", img.off, img.bytes)
	}
	if want := wasmModule(memory1); !bytes.Equal(stripped, want) {
		t.Fatalf("stripped = %x, want %x", stripped, want)
	}
	// The runtime agrees.
	ctx := context.Background()
	mem := initialMemory(t, ctx, code)
	if string(mem[16:21]) != "abXYZ" {
		t.Fatalf("runtime memory at 16 = %q", mem[16:21])
	}
}

func TestSplitDataDeclines(t *testing.T) {
	seg := func(b ...byte) []byte { return wasmSection(wasmSectionData, b...) }
	cases := map[string][]byte{
		"passive segment":         wasmModule(memory1, seg(1, 1, 2, 'h', 'i')),
		"explicit memory index":   wasmModule(memory1, seg(1, 2, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x')),
		"offset from a global":    wasmModule(memory1, seg(1, 0, 0x23, 0, wasmOpEnd, 1, 'x')),
		"two-instruction offset":  wasmModule(memory1, seg(1, 0, wasmOpI32Const, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x')),
		"past the initial memory": wasmModule(memory1, seg(1, 0, wasmOpI32Const, 0xfb, 0xff, 0x03, wasmOpEnd, 8, 1, 2, 3, 4, 5, 6, 7, 8)),
		"negative offset":         wasmModule(memory1, seg(1, 0, wasmOpI32Const, 0x7f, wasmOpEnd, 1, 'x')),
		"data count section":      wasmModule(memory1, wasmSection(wasmSectionDataCount, 1), seg(1, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x')),
		"no memory section":       wasmModule(seg(1, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x')),
		"shared memory":           wasmModule(wasmSection(wasmSectionMemory, 1, 3, 1, 1), seg(1, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x')),
		"trailing bytes":          wasmModule(memory1, seg(1, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x', 0)),
		"segment count too high":  wasmModule(memory1, seg(2, 0, wasmOpI32Const, 0, wasmOpEnd, 1, 'x')),
		"overlong count":          wasmModule(memory1, seg(0x81, 0x80, 0x80, 0x80, 0x80, 0x00)),
		"no data section":         wasmModule(memory1),
		"truncated section":       wasmModule(memory1, []byte{wasmSectionData, 20, 1, 0}),
		"not a module":            []byte("hello"),
	}
	for name, code := range cases {
		if _, _, ok := splitData(code); ok {
			t.Errorf("%s: splitData took the data section out", name)
		}
	}
}

func FuzzSplitData(f *testing.F) {
	f.Add(wasmModule(memory1, wasmSection(wasmSectionData, 1, 0, wasmOpI32Const, 3, wasmOpEnd, 2, 'h', 'i')))
	f.Add(wasmModule(memory1, wasmSection(wasmSectionData, 1, 1, 2, 'h', 'i')))
	f.Add(wasmModule(wasmSection(wasmSectionMemory, 1, 1, 1, 2), wasmSection(wasmSectionData, 0)))
	f.Fuzz(func(t *testing.T, code []byte) {
		stripped, img, ok := splitData(code)
		if !ok {
			return
		}
		if len(stripped) >= len(code) || !bytes.HasPrefix(stripped, code[:8]) {
			t.Fatalf("stripped module of %d bytes from %d", len(stripped), len(code))
		}
		if uint64(img.off)+uint64(len(img.bytes)) > 65536*65536 {
			t.Fatalf("image ends at %d, past any 32-bit memory", uint64(img.off)+uint64(len(img.bytes)))
		}
		if again, _, ok := splitData(stripped); ok || again != nil {
			t.Fatal("the stripped module still has a data section")
		}
	})
}
