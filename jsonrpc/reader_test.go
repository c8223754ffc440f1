package jsonrpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads until io.EOF or another error and records every result.
func readAll(r *Reader) (results []string, err error) {
	for i := 0; i < 1000; i++ {
		line, err := r.ReadLine()
		switch {
		case err == ErrLineTooLong:
			results = append(results, "<too long>")
		case err != nil:
			return results, err
		default:
			results = append(results, string(line))
		}
	}
	panic("ReadLine never ended")
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []string
	}{
		{"lines are split on LF", "a\nb\n", 0, []string{"a", "b"}},
		{"CRLF line endings are stripped", "a\r\nb\r\n", 0, []string{"a", "b"}},
		{"only one CR is stripped", "a\r\r\n", 0, []string{"a\r"}},
		{"a CR inside a line is kept", "a\rb\n", 0, []string{"a\rb"}},
		{"empty lines are skipped", "\n\na\n\n\nb\n", 0, []string{"a", "b"}},
		{"whitespace-only lines are skipped", " \t\n\r\n \r\na\n", 0, []string{"a"}},
		{"leading and trailing spaces are kept", " a \n", 0, []string{" a "}},
		{"final unterminated line is returned before EOF", "a\nb", 0, []string{"a", "b"}},
		{"final unterminated CR line is stripped", "a\r", 0, []string{"a"}},
		{"empty input is EOF", "", 0, nil},
		{"whitespace-only input is EOF", " \n \r\n", 0, nil},
		{"line of exactly the cap is accepted", "abcd\n", 4, []string{"abcd"}},
		{"line of exactly the cap with CRLF is accepted", "abcd\r\n", 4, []string{"abcd"}},
		{"line over the cap is too long and the next line reads fine", "abcde\nok\n", 4, []string{"<too long>", "ok"}},
		{"unterminated final line over the cap is too long", "ok\nabcde", 4, []string{"ok", "<too long>"}},
		{"several long lines are each reported", "abcdefgh\nabcdefgh\nx\n", 4, []string{"<too long>", "<too long>", "x"}},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{16, 4096} { // 16 forces the multi-fragment path
			t.Run(fmt.Sprintf("%s (buffer %d)", tt.name, bufSize), func(t *testing.T) {
				r := newReaderSize(iotest.OneByteReader(strings.NewReader(tt.in)), tt.maxLine, bufSize)
				got, err := readAll(r)
				if err != io.EOF {
					t.Fatalf("final error = %v, want io.EOF", err)
				}
				if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
					t.Errorf("lines = %q, want %q", got, tt.want)
				}
				if _, err := r.ReadLine(); err != io.EOF {
					t.Errorf("ReadLine after EOF = %v, want io.EOF again", err)
				}
			})
		}
	}
}

func TestReaderLongLinesAcrossBufferBoundaries(t *testing.T) {
	long := strings.Repeat("x", 1000)
	in := long + "\n" + long + "y\n" + "z\n"
	r := newReaderSize(strings.NewReader(in), 1000, 16)
	got, err := readAll(r)
	if err != io.EOF {
		t.Fatal(err)
	}
	want := []string{long, "<too long>", "z"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %d lines %.40q..., want the 1000-byte line, too long, z", len(got), got)
	}
}

func TestReaderRejectsLinesOverDefaultCapAndContinues(t *testing.T) {
	big := bytes.Repeat([]byte("a"), DefaultMaxLineSize+1)
	in := io.MultiReader(bytes.NewReader(big), strings.NewReader("\n"+toolCall+"\n"))
	r := NewReader(in, 0)
	if _, err := r.ReadLine(); err != ErrLineTooLong {
		t.Fatalf("16 MiB + 1 line: err = %v, want ErrLineTooLong", err)
	}
	line, err := r.ReadLine()
	if err != nil || string(line) != toolCall {
		t.Fatalf("line after the long one = %.40q, %v; want the tool call", line, err)
	}
	if _, err := Decode(line); err != nil {
		t.Errorf("Decode(line after the long one): %v", err)
	}
}

func TestReaderAcceptsLineOfDefaultCap(t *testing.T) {
	big := bytes.Repeat([]byte("a"), DefaultMaxLineSize)
	r := NewReader(io.MultiReader(bytes.NewReader(big), strings.NewReader("\r\n")), DefaultMaxLineSize)
	line, err := r.ReadLine()
	if err != nil || len(line) != DefaultMaxLineSize {
		t.Fatalf("len(line) = %d, err = %v; want %d, nil", len(line), err, DefaultMaxLineSize)
	}
}

func TestReaderLinesBelongToTheCaller(t *testing.T) {
	r := NewReader(strings.NewReader("first\nsecond\n"), 0)
	a, _ := r.ReadLine()
	b, _ := r.ReadLine()
	if string(a) != "first" || string(b) != "second" {
		t.Errorf("lines = %q, %q; the first was overwritten by reading the second", a, b)
	}
}

func TestReaderReturnsReadErrorsAndDropsThePartialLine(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("ok\npartial"), iotest.ErrReader(boom)), 0)
	if line, err := r.ReadLine(); err != nil || string(line) != "ok" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	for range 2 {
		if line, err := r.ReadLine(); err != boom {
			t.Fatalf("ReadLine = %q, %v; want the read error, every time", line, err)
		}
	}
}

// TestReaderSharedLinesAreNotOverwrittenBeforeReuse reads many lines through
// a small buffer: every line ReadShared returned keeps its bytes until
// Reuse, and after Keep for good, however much is read meanwhile.
func TestReaderSharedLinesAreNotOverwrittenBeforeReuse(t *testing.T) {
	var in strings.Builder
	for i := range 200 {
		fmt.Fprintf(&in, "line %d %s\n", i, strings.Repeat("x", i%23))
	}
	r := newReaderSize(iotest.HalfReader(strings.NewReader(in.String())), 0, 32)
	type held struct {
		line []byte
		want string
	}
	var batch, kept []held
	for i := 0; ; i++ {
		line, err := r.ReadShared()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, held{line, string(line)})
		for _, h := range append(batch, kept...) {
			if string(h.line) != h.want {
				t.Fatalf("after %d reads a held line reads %q, want %q", i+1, h.line, h.want)
			}
		}
		switch i % 7 {
		case 3:
			r.Reuse()
			batch = batch[:0]
		case 6:
			r.Keep()
			kept, batch = append(kept, batch...), batch[:0]
		}
	}
	if len(kept) == 0 {
		t.Fatal("no line was kept")
	}
}

func TestReaderSharedLinesCannotBeExtendedOverTheNext(t *testing.T) {
	r := NewReader(strings.NewReader("ab\ncd\n"), 0)
	a, _ := r.ReadShared()
	_ = append(a, 'X')
	b, _ := r.ReadShared()
	if string(b) != "cd" {
		t.Errorf("second line = %q after appending to the first, want %q", b, "cd")
	}
}

func TestReaderBuffered(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []bool // Buffered before each read, until EOF
	}{
		{"lines arrived together are buffered", "a\nb\nc\n", []bool{false, true, true, false}},
		{"blank lines do not count as a line", "a\n\n \r\n", []bool{false, false}},
		{"a blank line before a line is skipped", "a\n\nb\n", []bool{false, true, false}},
		{"an unterminated final line is not", "a\nb", []bool{false, false, false}},
		{"a line over the cap is", "a\nabcdefgh\nb\n", []bool{false, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReaderSize(strings.NewReader(tt.in), 4, 64)
			var got []bool
			for {
				got = append(got, r.Buffered())
				if _, err := r.ReadShared(); err == io.EOF {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Buffered = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReaderBufferedNeverBlocks: when Buffered is true, the next read must
// not need the source, or a batching relay would hold decided messages
// while it waits for more input.
func TestReaderBufferedNeverBlocks(t *testing.T) {
	src := &blockingAfter{data: []byte("a\n\n\nb\n \nc\n")}
	r := newReaderSize(src, 0, 64)
	var got []string
	line, err := r.ReadShared() // the one read of the source
	for ; err == nil; line, err = r.ReadShared() {
		got = append(got, string(line))
		if !r.Buffered() {
			break
		}
	}
	if err != nil || strings.Join(got, "|") != "a|b|c" {
		t.Errorf("lines read while Buffered = %q, %v; want a, b, c", got, err)
	}
}

// blockingAfter returns data in one read, then fails the test if read again.
type blockingAfter struct {
	data []byte
	done bool
}

func (b *blockingAfter) Read(p []byte) (int, error) {
	if b.done {
		panic("read again: a read after Buffered reported a line would block")
	}
	b.done = true
	return copy(p, b.data), nil
}

// One huge message must not leave the Reader holding a huge buffer, whether
// its line was reused or kept.
func TestReaderDoesNotKeepAHugeBufferAfterAHugeLine(t *testing.T) {
	for _, keep := range []bool{false, true} {
		big := strings.Repeat("a", 4<<20)
		r := NewReader(strings.NewReader(big+"\nsmall\nsmall\n"), 0)
		if line, err := r.ReadShared(); err != nil || len(line) != len(big) {
			t.Fatalf("huge line: %d bytes, %v", len(line), err)
		}
		if keep {
			r.Keep()
		} else {
			r.Reuse()
		}
		if len(r.buf) > maxKeptBuffer {
			t.Errorf("keep %v: the buffer is still %d bytes", keep, len(r.buf))
		}
		for range 2 {
			if line, err := r.ReadShared(); err != nil || string(line) != "small" {
				t.Fatalf("keep %v: line after the huge one = %.20q, %v", keep, line, err)
			}
		}
	}
}
