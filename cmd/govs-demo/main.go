// Command govs-demo shows govs working in one command (`make demo`): it builds
// a namespace topology with a client, a director and three tiny HTTP real
// servers, runs govsd on an embedded configuration, sends requests through
// the VIP, prints which real server answered each, and removes everything.
// It needs root.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/topo"
)

//go:embed demo.yaml
var demoConfig string

func main() {
	govsd := flag.String("govsd", "bin/govsd", "path of the govsd binary")
	govsadm := flag.String("govsadm", "bin/govsadm", "path of the govsadm binary")
	requests := flag.Int("n", 9, "requests to send through the VIP")
	flag.Parse()
	if err := run(*govsd, *govsadm, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(govsdPath, govsadmPath string, requests int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root to create network namespaces and attach XDP (try: sudo make demo)")
	}
	fmt.Println("== building the topology: client -- d0 [director] d1 -- bridge -- rs1, rs2, rs3")
	fmt.Println("   (veths with their default offloads, as containers have them: the client's and the")
	fmt.Println("   real servers' TCP checksums reach the director unfinished, and govs finishes them)")
	lab, err := topo.NewLab(fmt.Sprintf("govsdemo%d", os.Getpid()%1000), topo.LabOptions{RealServers: 3})
	if err != nil {
		return err
	}
	defer func() {
		lab.Close()
		fmt.Println("== cleaned up: namespaces removed")
	}()
	// An interrupt still cleans up.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { <-sigs; lab.Close(); os.Exit(130) }()

	vip := "198.18.0.100"
	if err := lab.AddVIP(mustParse(vip)); err != nil {
		return err
	}
	stop, err := lab.ServeHTTP(8080)
	if err != nil {
		return err
	}
	defer stop()

	dir, err := os.MkdirTemp("", "govs-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "govs.sock")
	cfgPath := filepath.Join(dir, "govs.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(demoConfig, "@SOCKET@", sock)), 0o644); err != nil {
		return err
	}
	fmt.Printf("== starting govsd in the director namespace (config %s)\n", cfgPath)
	cmd := lab.Director.Command(context.Background(), govsdPath, "-c", cfgPath)
	logPath := filepath.Join(dir, "govsd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// Stop for good: nothing of govs stays (SIGTERM would keep the
		// XDP program and the connections for a next govsd).
		if err := exec.Command(govsadmPath, "--socket", sock, "--shutdown").Run(); err != nil {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		fmt.Println("== govsd stopped; its log:")
		b, _ := os.ReadFile(logPath)
		fmt.Print(indent(string(b)))
	}()
	if err := waitSocket(sock, exited); err != nil {
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w\n%s", err, b)
	}
	if out, err := exec.Command(govsadmPath, "--socket", sock, "-L", "-n").CombinedOutput(); err == nil {
		fmt.Println("== govsadm -L -n")
		fmt.Print(indent(string(out)))
	}

	fmt.Printf("== %d HTTP requests from the client (198.18.0.1) to http://%s/\n", requests, vip)
	client := topo.HTTPClient(lab.Client, 3*time.Second)
	hits := map[string]int{}
	failed := 0
	for i := 1; i <= requests; i++ {
		body, err := topo.Get(context.Background(), client, "http://"+vip+"/")
		if err != nil {
			// A lost first SYN (neighbour being resolved) is retried once.
			body, err = topo.Get(context.Background(), client, "http://"+vip+"/")
		}
		if err != nil {
			fmt.Printf("   request %d: FAILED: %v\n", i, err)
			failed++
			continue
		}
		f := strings.Fields(body)
		fmt.Printf("   request %d: answered by %s (it saw the client as %s)\n", i, f[0], f[1])
		hits[f[0]]++
	}
	fmt.Printf("== spread: rs1=%d rs2=%d rs3=%d\n", hits["rs1"], hits["rs2"], hits["rs3"])
	if out, err := exec.Command(govsadmPath, "--socket", sock, "-L", "-n").CombinedOutput(); err == nil {
		fmt.Println("== govsadm -L -n")
		fmt.Print(indent(string(out)))
	}
	if out, err := exec.Command(govsadmPath, "--socket", sock, "-L", "-n", "-c").CombinedOutput(); err == nil {
		fmt.Println("== govsadm -L -n -c")
		fmt.Print(indent(string(out)))
	}
	if out, err := exec.Command(govsadmPath, "--socket", sock, "--counters").CombinedOutput(); err == nil {
		fmt.Println("== govsadm --counters (checksums finished, fast path per interface)")
		fast := false // in the fast_path table, the last one
		for _, l := range strings.Split(string(out), "\n") {
			fast = fast || strings.HasSuffix(l, " fast_path")
			if l != "" && (fast || strings.Contains(l, "csum_finished")) {
				fmt.Println("   " + l)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed", failed, requests)
	}
	return nil
}

func waitSocket(path string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("govsd exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("govsd did not come up in 15 s")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "   " + strings.Join(lines, "\n   ") + "\n"
}

func mustParse(s string) netip.Addr { return netip.MustParseAddr(s) }
