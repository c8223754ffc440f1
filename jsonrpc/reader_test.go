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
