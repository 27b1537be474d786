import Foundation
import Sandbox
import Testing
import WardenCore

/// The jail attacked as a hostile agent would. Each test checks the attack failed, and where
/// it matters that the same action would have worked without the jail.
@Suite("Jail holds against an agent trying to break out")
struct JailAttackTests {
    /// Runs one python3 snippet in the jail and returns its stdout.
    func python(_ shell: ShellSession, _ code: String) throws -> String {
        let result = try shell.run("python3 - <<'PYEOF'\n\(code)\nPYEOF", timeout: 30)
        return result.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("nothing listening on the host's loopback is reachable")
    func hostLoopbackUnreachable() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(listen(listener, 4) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))

        // The same probe from the host connects: the test would notice a broken probe.
        #expect(try host("timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/\(port)' && echo open").contains("open"))

        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/\(port)' && echo open || echo refused", timeout: 20)
        #expect(result.stdout.text == "refused\n")
        let interfaces = try shell.run("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
        #expect(interfaces.stdout.text == "lo\n")
    }

    @Test("the system, home directories and other paths are read-only or absent")
    func filesystemConfined() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let sibling = checkout.parent.appendingPathComponent("other-checkout")
        try FileManager.default.createDirectory(at: sibling, withIntermediateDirectories: true)
        try "secret".write(to: sibling.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let shell = try makeShell(checkout)
        defer { shell.close() }

        for target in ["/etc/warden-probe", "/usr/warden-probe", "/usr/bin/warden-probe", "/warden-probe", "/opt/warden-probe"] {
            let result = try shell.run("echo x > \(target)")
            #expect(result.exitCode != 0, "wrote \(target)")
            #expect(!FileManager.default.fileExists(atPath: target))
        }
        #expect(try shell.run("ls /root/.bashrc /root/.ssh /home 2>/dev/null").stdout.text.isEmpty)
        #expect(try shell.run("cat \(sibling.path)/notes.txt").exitCode != 0)
        #expect(try shell.run("ls \(checkout.parent.path)").stdout.text == "checkout\n")
        // The checkout itself is writable, at its real path.
        #expect(try shell.run("echo ok > written.txt").exitCode == 0)
        #expect(FileManager.default.fileExists(atPath: checkout.path.appendingPathComponent("written.txt").path))
        // /tmp is private: a file written there does not appear on the host.
        let tag = UUID().uuidString
        #expect(try shell.run("touch /tmp/\(tag)").exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(tag)"))
    }

    @Test("secrets are masked and the harness's environment does not leak")
    func secretsMasked() throws {
        setenv("WARDEN_TEST_API_KEY", "sk-should-never-leak", 1)
        defer { unsetenv("WARDEN_TEST_API_KEY") }
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        #expect(try host("head -c 1 /etc/shadow | wc -c").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let shadow = try shell.run("cat /etc/shadow")
        #expect(!shadow.stdout.text.contains("root:"))
        #expect(try shell.run("ls -A /etc/ssh").stdout.text.isEmpty)
        let environment = try shell.run("env; cat /proc/1/environ")
        #expect(!environment.combined.text.contains("sk-should-never-leak"))
        #expect(!environment.combined.text.contains("WARDEN_TEST_API_KEY"))
    }

    @Test("no capabilities, no_new_privs, and dangerous syscalls refused")
    func syscallsRefused() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let status = try shell.run("grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status").stdout.text
        #expect(status.contains("CapEff:\t0000000000000000"))
        #expect(status.contains("CapBnd:\t0000000000000000"))
        #expect(status.contains("NoNewPrivs:\t1"))
        #expect(status.contains("Seccomp:\t2"))

        let errnos = try python(shell, """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            def call(number, *args):
                result = libc.syscall(number, *args)
                return ctypes.get_errno() if result == -1 else 0
            print("ptrace", call(101, 0, 0, 0, 0))            # PTRACE_TRACEME
            print("mount", call(165, b"none", b"/mnt", b"tmpfs", 0, 0))
            print("unshare", call(272, 0x10000000))            # CLONE_NEWUSER
            print("keyctl", call(250, 0, 0, 0, 0))
            print("clone_newuser", call(56, 0x10000000 | 17, 0, 0, 0, 0))
            print("bpf", call(321, 0, 0, 0))
            print("io_uring", call(425, 1, 0))
            """)
        #expect(errnos.split(separator: "\n").count == 7, "python printed: \(errnos)")
        for line in errnos.split(separator: "\n") {
            #expect(line.hasSuffix(" 1"), "expected EPERM: \(line)")
        }
        #expect(try shell.run("unshare -U true").exitCode != 0)
        #expect(try shell.run("mount -t tmpfs none /mnt").exitCode != 0)
    }

    @Test("TIOCSTI cannot push keystrokes into a terminal")
    func tiocsti() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let output = try python(shell, """
            import os, fcntl, termios, errno
            master, slave = os.openpty()
            try:
                fcntl.ioctl(slave, termios.TIOCSTI, b"x")
                print("pushed")
            except OSError as error:
                print(errno.errorcode[error.errno])
            """)
        #expect(output == "EPERM")
    }

    @Test("a fork bomb hits the process cap and the host survives")
    func forkBomb() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.processes = 64 }
        defer { shell.close() }
        let before = try host("ps -e --no-headers | wc -l")
        // The shell waits and counts with builtins only: the bomb holds every process slot.
        let result = try shell.run("""
            bomb() { bomb | bomb & }; bomb 2>/dev/null
            end=$((SECONDS + 3)); while ((SECONDS < end)); do :; done
            n=0; for p in /proc/[0-9]*; do n=$((n + 1)); done; echo $n
            """, timeout: 20)
        #expect(!result.timedOut)
        let count = Int(result.stdout.text.split(separator: "\n").last ?? "")
        #expect((count ?? 1000) <= 64, "processes seen: \(result.stdout.text.suffix(200))")
        // The bomb is still running: the host holds the jail's capped share and no more.
        let after = try host("ps -e --no-headers | wc -l")
        #expect((Int(after.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) < (Int(before.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) + 64 + 16)
        let next = try shell.run("echo alive", timeout: 20)
        #expect(next.stdout.text == "alive\n")
    }

    @Test("filling the disk stops at the file-size limit")
    func diskFill() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.fileSizeMB = 8 }
        defer { shell.close() }
        let result = try shell.run("head -c 100000000 /dev/zero > big.bin; echo status=$?", timeout: 30)
        #expect(!result.stdout.text.contains("status=0"))
        let size = (try FileManager.default.attributesOfItem(atPath: checkout.path.appendingPathComponent("big.bin").path)[.size] as? Int) ?? -1
        #expect(size <= 8 << 20)
        let tmp = try shell.run("head -c 100000000 /dev/zero > /tmp/big.bin; echo status=$?", timeout: 30)
        #expect(!tmp.stdout.text.contains("status=0"))
    }

    @Test("closing a session kills its detached children too")
    func closeKillsDetached() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let tag = "47\(Int.random(in: 100_000...999_999))"
        let shell = try makeShell(checkout)
        _ = try shell.run("(setsid sleep \(tag) &) ; sleep 0.2")
        #expect(try host("ps -eo args").contains("sleep \(tag)"))
        shell.close()
        try? host("sleep 0.3")
        #expect(try host("ps -eo args").contains("sleep \(tag)") == false)
    }
}

@Suite("Jail limits")
struct JailLimitTests {
    @Test("CPU time is capped: a busy loop is stopped by SIGXCPU")
    func cpuLimit() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.cpuSeconds = 1 }
        defer { shell.close() }
        let result = try shell.run("bash -c 'while :; do :; done'; echo status=$?", timeout: 30)
        #expect(result.stdout.text == "status=152\n")  // 128 + SIGXCPU
    }

    @Test("open files are capped")
    func openFiles() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.openFiles = 64 }
        defer { shell.close() }
        #expect(try shell.run("ulimit -n").stdout.text == "64\n")
    }

    @Test("a foreign-architecture syscall kills the process")
    func foreignArchitecture() throws {
        guard (try? host("command -v cc"))?.isEmpty == false else { return }  // needs a C compiler to build the probe
        let checkout = try TempCheckout(files: ["probe.c": "int main(void) { long r; __asm__ volatile(\"int $0x80\" : \"=a\"(r) : \"a\"(20L)); return r > 0 ? 0 : 1; }\n"])
        defer { checkout.cleanup() }
        try host("cc -o '\(checkout.path.path)/probe' '\(checkout.path.path)/probe.c'")
        // Outside the jail the ia32 getpid works.
        #expect(try host("'\(checkout.path.path)/probe'; echo $?") == "0\n")
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let result = try shell.run("./probe; echo status=$?")
        #expect(result.stdout.text == "status=159\n")  // 128 + SIGSYS
    }

    @Test("the full output can be spilled to a file outside the jail")
    func spill() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        var profile = try loadProfile("agent")
        profile.output = .init(headBytes: 100, tailBytes: 100)
        let shell = ShellSession(configuration: try JailConfiguration(profile: profile, checkout: checkout.path, spillDirectory: checkout.parent.path))
        defer { shell.close() }
        let result = try shell.run("seq 1 100000", spill: true)
        let path = try #require(result.spillPath)
        let spilled = try String(contentsOfFile: path, encoding: .utf8)
        #expect(spilled.utf8.count == result.stdout.totalBytes)
        #expect(spilled.hasSuffix("99999\n100000\n"))
        #expect(result.stdout.droppedBytes == result.stdout.totalBytes - 200)
    }
}
