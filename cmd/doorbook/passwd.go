package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/doorbook/doorbook/server/service"
)

// adminPasswd sets an admin's console password on the database itself:
// the operator's command, as serve's creating the first admin is, so it
// needs the database and no token.
func adminPasswd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("admin passwd", stderr)
	db := fs.String("db", "doorbook.db", "SQLite database `file`, or a PostgreSQL URL")
	name := fs.String("name", "", "the admin's `name`")
	file := fs.String("password-file", "", "take the password from the first line of this `file` (default: make one up and print it)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	password, made := "", *file == ""
	if made {
		password = rand.Text()
	} else {
		var err error
		if password, err = firstLine(*file); err != nil {
			return err
		}
	}
	backend, err := openBackend(ctx, *db)
	if err != nil {
		return err
	}
	defer backend.Close()
	if err := service.New(backend).SetAdminPassword(ctx, *name, password); err != nil {
		return err
	}
	res := struct {
		Admin    string `json:"admin"`
		Password string `json:"password,omitempty"`
	}{Admin: *name}
	if made {
		res.Password = password
	}
	return output{json: *asJSON, w: stdout}.print(res, func(w io.Writer) {
		fmt.Fprintf(w, "password of admin %s set\n", res.Admin)
		if made {
			fmt.Fprintf(w, "password: %s\n", password)
		}
	})
}

// firstLine reads the first line of a small file, without its line end.
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4096))
	if !sc.Scan() {
		return "", errors.Join(fmt.Errorf("%s: no password in it", path), sc.Err())
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}
