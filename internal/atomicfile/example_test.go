package atomicfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentid/agentid/internal/atomicfile"
)

func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "atomicfile-example-")
	defer os.RemoveAll(dir)
	key := filepath.Join(dir, "key.pem")

	// A secret: mode 0600, and never over an existing file.
	fmt.Println(atomicfile.Write(key, []byte("first"), 0o600, atomicfile.Options{NoReplace: true}))
	err := atomicfile.Write(key, []byte("second"), 0o600, atomicfile.Options{NoReplace: true})
	fmt.Println(errors.Is(err, fs.ErrExist))

	// Replacing is the default.
	fmt.Println(atomicfile.Write(key, []byte("second"), 0o600, atomicfile.Options{}))
	b, _ := os.ReadFile(key)
	fmt.Println(string(b))
	// Output:
	// <nil>
	// true
	// <nil>
	// second
}
