package main

import "os"

func main() {
	a := &app{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		res:    netResolver{},
	}
	os.Exit(a.run(os.Args[1:]))
}
