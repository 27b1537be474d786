import Foundation
import Sandbox
import Testing
import WardenCore

/// Ordinary development work must succeed inside the jail.
@Suite("Development work inside the jail")
struct DevelopmentWorkTests {
    static let library = """
        def add(a, b):
            return a + b
        """
    static let tests = """
        from calc import add

        def test_add():
            assert add(2, 3) == 5

        def test_add_negative():
            assert add(-2, 1) == -1
        """

    @Test("python3 -m pytest, git, grep, sed -i and find")
    func everydayTools() throws {
        let checkout = try TempCheckout(files: ["calc.py": Self.library, "test_calc.py": Self.tests])
        defer { checkout.cleanup() }
        try host("cd '\(checkout.path.path)' && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm base")
        let shell = try makeShell(checkout)
        defer { shell.close() }

        let pytest = try shell.run("python3 -m pytest -q", timeout: 60)
        #expect(pytest.exitCode == 0, "\(pytest.combined.text)")
        #expect(pytest.stdout.text.contains("2 passed"))

        #expect(try shell.run("sed -i 's/a + b/a - b/' calc.py").exitCode == 0)
        let failing = try shell.run("python3 -m pytest -q", timeout: 60)
        #expect(failing.exitCode == 1)
        #expect(try shell.run("grep -rn 'a - b' .").stdout.text.contains("calc.py:2"))
        #expect(try shell.run("find . -name '*.py' -not -path './.git/*' | sort").stdout.text == "./calc.py\n./test_calc.py\n")

        #expect(try shell.run("git status --porcelain").stdout.text == " M calc.py\n")
        #expect(try shell.run("git diff --stat").stdout.text.contains("calc.py"))
        let commit = try shell.run("git commit -qam 'agent change' && git log --oneline | wc -l")
        #expect(commit.exitCode == 0, "\(commit.combined.text)")
        #expect(commit.stdout.text == "2\n")
    }

    @Test("a local TCP server and client inside the same jail")
    func localServer() throws {
        let checkout = try TempCheckout(files: ["index.html": "hello from the jail\n"])
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        _ = try shell.run("python3 -m http.server 8765 --bind 127.0.0.1 >/tmp/server.log 2>&1 &")
        let fetch = try shell.run("""
            for i in $(seq 1 50); do
              python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8765/index.html').read().decode(), end='')" 2>/dev/null && break
              sleep 0.1
            done
            """, timeout: 30)
        #expect(fetch.stdout.text == "hello from the jail\n")
    }

    @Test("a checkout below /tmp stays visible although the jail has a private /tmp")
    func checkoutBelowTmp() throws {
        let checkout = try TempCheckout(files: ["marker.txt": "under tmp\n"])
        defer { checkout.cleanup() }
        #expect(checkout.path.path.hasPrefix("/tmp/"))
        let shell = try makeShell(checkout)
        defer { shell.close() }
        #expect(try shell.run("cat marker.txt").stdout.text == "under tmp\n")
    }
}
