import Foundation
@testable import Sandbox
import Testing
import WardenCore

/// The jail's second line of defence: memory and process caps for the whole jail, no host
/// root, no secrets in toolchain mounts, no terminal, a /proc that shows the jail, and a
/// jail that dies with its supervisor.
@Suite("Jail hardening")
struct JailHardeningTests {
    /// The host pid of the jailed process running `sleep <tag>`.
    func hostPID(ofSleep tag: String) throws -> pid_t {
        let found = try host("pgrep -f '^sleep \(tag)$'").split(separator: "\n").first
        return try #require(found.flatMap { pid_t($0) }, "no host process runs sleep \(tag)")
    }

    func parent(of pid: pid_t) throws -> pid_t {
        try #require(pid_t(try host("ps -o ppid= -p \(pid)").trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Running or sleeping; a zombie waiting for its new parent to reap it is dead.
    func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[close...].hasPrefix(") Z")
    }

    /// A harness started with few descriptors open gets pipes and sockets numbered 0-6, the
    /// numbers the spawn dup2s the helper's descriptors into one after another.
    @Test("a descriptor numbered like one of the helper's own reaches the jail intact")
    func lowNumberedDescriptorsAreRenumbered() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let configuration = try JailConfiguration(profile: try loadProfile("agent"), checkout: checkout.path)
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        // Lend the socket the number 0 (this process reads nothing from stdin) for the start.
        let savedStdin = dup(0)
        #expect(dup2(pair[1], 0) == 0)
        close(pair[1])
        let helper: HelperProcess
        do {
            defer {
                dup2(savedStdin, 0)
                close(savedStdin)
            }
            helper = try HelperProcess.start(configuration, arguments: ["/bin/sh", "-c", "echo through-fd-3 >&3"], workingDirectory: nil, passing: 0)
        }
        defer { helper.terminate() }
        var ready = pollfd(fd: pair[0], events: Int16(POLLIN), revents: 0)
        #expect(poll(&ready, 1, 10_000) == 1, "nothing arrived on the passed socket")
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(pair[0], &buffer, buffer.count)
        #expect(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self) == "through-fd-3\n")
    }

    @Test("memory is capped for the whole jail: processes that together pass the limit are killed, and the model is told")
    func memoryPerJail() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.memoryMB = 512 }
        defer { shell.close() }
        // Three processes of 200 MB each: every one stays under a 512 MB per-process limit.
        let result = try shell.run("""
            python3 - <<'EOF'
            import os, time
            children = []
            for _ in range(3):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(200 * 1024 * 1024)
                    time.sleep(1)
                    os._exit(0)
                children.append(pid)
            for pid in children:
                print(os.waitpid(pid, 0)[1])
            EOF
            """, timeout: 60)
        let memory = try #require(result.outOfMemory, "no out-of-memory kill reported: \(result.combined.text)")
        #expect(memory.limitBytes == 512 << 20)
        #expect(memory.killedProcesses >= 1)
        #expect(result.stdout.text.contains("9\n"), "a child was killed by SIGKILL: \(result.stdout.text)")
        let next = try shell.run("echo alive")
        #expect(next.restart == .afterOutOfMemory)
        #expect(next.stdout.text == "alive\n")
        #expect(next.outOfMemory == nil)
    }

    @Test("a shell that itself runs out of memory is reported too")
    func shellOutOfMemory() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.memoryMB = 64 }
        defer { shell.close() }
        let result = try shell.run("x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}", timeout: 60)
        #expect(result.outOfMemory != nil, "exit \(String(describing: result.exitCode)): \(result.combined.text.suffix(300))")
        #expect(try shell.run("echo alive").restart == .afterOutOfMemory)
    }

    @Test("N workers cannot promise more memory than the host has")
    func memoryBudget() throws {
        var agent = SandboxProfile(name: "agent", limits: .init(memoryMB: 8192))
        var scoring = [SandboxProfile(name: "tests", limits: .init(memoryMB: 8192)),
                       SandboxProfile(name: "setup", limits: .init(memoryMB: 16384))]
        // One worker holds agent + setup (24 GiB); two fit in 48 GiB.
        #expect(try MemoryBudget.fit(workers: 2, agent: &agent, scoring: &scoring, availableBytes: 48 << 30) == nil)
        #expect(agent.limits.memoryMB == 8192)

        let note = try #require(try MemoryBudget.fit(workers: 4, agent: &agent, scoring: &scoring, availableBytes: 24 << 30))
        #expect(note.contains("limits.memory_mb") && note.contains("--workers"))
        let perWorker = agent.limits.memoryMB + scoring.map(\.limits.memoryMB).max()!
        #expect(4 * perWorker <= 24 << 10)
        #expect(agent.limits.memoryMB == 2048 && scoring[1].limits.memoryMB == 4096)

        var small = SandboxProfile(name: "agent", limits: .init(memoryMB: 8192))
        var none: [SandboxProfile] = []
        #expect(throws: WardenError.self) {
            try MemoryBudget.fit(workers: 64, agent: &small, scoring: &none, availableBytes: 16 << 30)
        }
        #expect(MemoryBudget.availableBytes() > 0)
    }

    @Test("the process cap holds: forks beyond it fail at once")
    func processCap() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout) { $0.limits.processes = 64 }
        defer { shell.close() }
        // Without a cap (or with only the per-namespace pid_max of 301) this forks all 400.
        let result = try shell.run("""
            python3 - <<'EOF'
            import errno, os, signal, time
            children, refused = [], "none"
            for _ in range(400):
                try:
                    pid = os.fork()
                except OSError as error:
                    refused = errno.errorcode[error.errno]
                    break
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                children.append(pid)
            for pid in children:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            print(len(children), refused)
            EOF
            """, timeout: 30)
        let fields = result.stdout.text.split(separator: " ")
        #expect(fields.count == 2, "python printed: \(result.combined.text)")
        #expect((Int(fields.first ?? "") ?? 1000) < 64)
        #expect(fields.last == "EAGAIN\n")
    }

    @Test("a pids cgroup without the pids controller fails the jail instead of running it uncapped")
    func missingPidsControllerFailsClosed() throws {
        // The unified hierarchy of a hybrid host has no controllers: a cgroup v2 without pids
        // in cgroup.subtree_control looks just like it.
        let unified = "/sys/fs/cgroup/unified"
        guard geteuid() == 0, FileManager.default.fileExists(atPath: unified + "/cgroup.procs") else { return }
        let root = unified + "/warden-test-\(UUID().uuidString.prefix(8))"
        #expect(mkdir(root, 0o755) == 0)
        defer { rmdir(root) }
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        var configuration = try JailConfiguration(profile: try loadProfile("agent"), checkout: checkout.path)
        configuration.cgroups.pids = .init(path: root, home: unified, unified: true)
        let shell = ShellSession(configuration: configuration)
        defer { shell.close() }
        let error = #expect(throws: WardenError.self) { try shell.start() }
        #expect(error?.message.contains("has no pids.max") == true, "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix("warden-") }.isEmpty)
    }

    @Test("a root harness does not make the jail root on the host")
    func noHostRoot() throws {
        guard geteuid() == 0 else { return }
        let secret = "/etc/warden-root-only-\(UUID().uuidString.prefix(8))"
        try "root-only-secret\n".write(toFile: secret, atomically: false, encoding: .utf8)
        chmod(secret, 0o600)
        defer { unlink(secret) }
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }

        let read = try shell.run("cat \(secret)")
        #expect(read.exitCode != 0)
        #expect(!read.combined.text.contains("root-only-secret"))
        #expect(read.stderr.text.contains("Permission denied"))
        #expect(try shell.run("id -u").stdout.text == "0\n")

        // Outside, the jail's processes belong to an unprivileged id.
        let tag = "48\(Int.random(in: 100_000...999_999))"
        _ = try shell.run("(sleep \(tag) &)")
        let uid = try host("ps -o uid= -p \(try hostPID(ofSleep: tag))").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(uid == String(shell.configuration.hostIdentity.uid))
        #expect(shell.configuration.hostIdentity == .unprivilegedRoot)

        // The checkout stays the jail root's to write, git accepts its ownership, and what
        // the jail writes belongs to the checkout's owner on disk.
        let git = try shell.run("git init -q && git add -A && git commit -qm base && git log --oneline | wc -l && echo new > made.txt")
        #expect(git.stdout.text == "1\n", "git in the jail: \(git.combined.text)")
        let attributes = try FileManager.default.attributesOfItem(atPath: checkout.path.appendingPathComponent("made.txt").path)
        #expect(attributes[.ownerAccountID] as? Int == 0)
        #expect(try shell.run("touch /tmp/x $HOME/y && echo ok").stdout.text == "ok\n")
    }

    @Test("toolchain mounts carry no credentials")
    func toolchainCredentials() throws {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        let cargoHome = home + "/.cargo"
        let credentials = cargoHome + "/credentials.toml"
        var planted = false
        if FileManager.default.fileExists(atPath: cargoHome), !FileManager.default.fileExists(atPath: credentials) {
            try "[registry]\ntoken = \"cio-planted-token\"\n".write(toFile: credentials, atomically: false, encoding: .utf8)
            chmod(credentials, 0o644)  // readable by anyone: only not mounting it protects it
            planted = true
        }
        defer { if planted { unlink(credentials) } }

        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        for prefix in shell.configuration.toolchains.flatMap(\.prefixes) {
            #expect(ToolchainDetector.refusal(prefix, homes: ToolchainDetector.homeDirectories()) == nil, "bound \(prefix)")
            #expect(!home.hasPrefix(prefix + "/") && prefix != home && prefix != cargoHome, "bound \(prefix)")
        }
        if planted {
            let probe = try shell.run("test -e \(credentials) && echo visible; cat \(credentials)")
            #expect(!probe.combined.text.contains("visible"))
            #expect(!probe.combined.text.contains("cio-planted-token"))
        }
        if shell.configuration.toolchains.contains(where: { $0.name == "cargo" }) {
            let cargo = try shell.run("cargo --version && rustc --version")
            #expect(cargo.exitCode == 0, "cargo in the jail: \(cargo.combined.text)")
        }

        #expect(ToolchainDetector.refusal("/root/.cargo", homes: ["/root"]) != nil)
        #expect(ToolchainDetector.refusal("/root", homes: ["/root"]) != nil)
        #expect(ToolchainDetector.refusal("/home", homes: ["/home/ada"]) != nil)
        #expect(ToolchainDetector.refusal("/", homes: ["/home/ada"]) != nil)
        #expect(ToolchainDetector.refusal("/home/ada/.local", homes: ["/home/ada"]) != nil)
        #expect(ToolchainDetector.refusal("/root/.pyenv/versions/3.11.7", homes: ["/root"]) == nil)
        #expect(ToolchainDetector.refusal("/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu", homes: ["/root"]) == nil)
        #expect(ToolchainDetector.refusal("/opt/swift", homes: ["/root"]) == nil)
    }

    @Test("the jail cannot reach the terminal warden runs in")
    func noTerminal() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { return }
        let warden = URL(fileURLWithPath: try JailConfiguration.locateHelper()).deletingLastPathComponent().appendingPathComponent("warden").path
        try #require(FileManager.default.isExecutableFile(atPath: warden), "build the warden executable first")
        let checkout = try TempCheckout(files: ["probe.py": """
            import errno, fcntl, os, signal, struct, termios
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            results = []
            for n in (0, 1, 2):
                results.append("fd%d-tty" % n if os.isatty(n) else "fd%d-pipe" % n)
            try:
                fd = os.open("/dev/tty", os.O_RDWR)
                if os.getpgrp() != os.getpid():
                    os.setpgid(0, 0)
                fcntl.ioctl(fd, termios.TIOCSPGRP, struct.pack("i", os.getpgrp()))
                results.append("foreground-taken")
            except OSError as error:
                results.append("refused-" + errno.errorcode[error.errno])
            results.append("session-leader" if os.getsid(0) == 1 else "session-shared")
            print(" ".join(results))
            """])
        defer { checkout.cleanup() }
        // `script` gives warden a real terminal as its controlling terminal, as a user's shell does.
        let command = "\(warden) exec --repo \(checkout.path.path) -- python3 probe.py"
        let output = try host("script -qec '\(command)' /dev/null < /dev/null")
        #expect(output.contains("fd0-pipe fd1-pipe fd2-pipe refused-ENXIO session-leader"), "in the jail: \(output)")
        // The same probe outside the jail, under the same terminal, takes the foreground.
        let outside = try host("script -qec 'python3 \(checkout.path.path)/probe.py' /dev/null < /dev/null")
        #expect(outside.contains("foreground-taken"), "the probe itself is broken: \(outside)")
    }

    @Test("/proc shows the jail, not the host's kernel state")
    func procMasked() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        #expect(try host("head -c 1 /proc/timer_list | wc -c").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let files = ["timer_list", "keys", "key-users", "kallsyms", "sched_debug", "kcore", "kmsg", "modules", "slabinfo",
                     "vmallocinfo", "iomem", "interrupts", "locks", "cmdline", "sys/kernel/random/boot_id"]
        for file in files where FileManager.default.fileExists(atPath: "/proc/" + file) {
            let bytes = try shell.run("head -c 64 /proc/\(file) 2>/dev/null | wc -c").stdout.text
            #expect(bytes == "0\n", "/proc/\(file) shows \(bytes) bytes")
        }
        for directory in ["acpi", "scsi", "driver", "pressure"] where FileManager.default.fileExists(atPath: "/proc/" + directory) {
            #expect(try shell.run("ls -A /proc/\(directory)").stdout.text.isEmpty, "/proc/\(directory) is not empty")
        }
        for path in ["/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/proc/fs"] {
            #expect(try shell.run("echo x > \(path)").exitCode != 0, "wrote \(path)")
        }
        // What stays is the jail's: its processes, its mounts, its network.
        let processes = try shell.run("ls /proc | grep -c '^[0-9]'").stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(processes) ?? 1000) <= 4, "processes in /proc: \(processes)")
        #expect(try shell.run("cat /proc/cpuinfo | grep -c processor").exitCode == 0)
    }

    @Test("the jail dies with its supervisor: SIGKILL to warden-jail kills the jail's pid 1")
    func diesWithSupervisor() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        let tag = "49\(Int.random(in: 100_000...999_999))"
        _ = try shell.run("(sleep \(tag) &)")
        let sleeper = try hostPID(ofSleep: tag)
        let jailInit = try parent(of: sleeper)
        let helper = try parent(of: jailInit)
        #expect(try host("ps -o comm= -p \(helper)").trimmingCharacters(in: .whitespacesAndNewlines) == "warden-jail")
        #expect(kill(helper, SIGKILL) == 0)
        let deadline = ContinuousClock.now + .seconds(3)
        while (alive(jailInit) || alive(sleeper)) && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(!alive(jailInit), "the jail's pid 1 outlived its supervisor")
        #expect(!alive(sleeper), "a jailed process outlived its supervisor")
        #expect(try shell.run("echo lost").shellExited)
        #expect(try shell.run("echo alive").stdout.text == "alive\n")
    }
}
