import Foundation
@testable import Images
import ImagesTesting
import Sandbox
import Testing
import WardenCore

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The small image, built and unpacked in a directory the caller removes.
func unpackedSmallImage() async throws -> (image: UnpackedImage, directory: URL) {
    let directory = try temporaryDirectory("jail-image")
    let small = try TestImages.small(in: directory)
    let image = try await ImageStore(directory: directory.appendingPathComponent("store")).prepare(try ImageName("oci:" + small.layout.path))
    return (image, directory)
}

@Suite("Jails in images")
struct ImageJailTests {
    static func profile(_ name: String = "agent-image") throws -> SandboxProfile {
        try SandboxProfile.load(repositoryRoot.appendingPathComponent("Sandboxes/\(name).json").path)
    }

    /// A jail configuration over a checkout bound at /testbed in a freshly unpacked small image,
    /// all in `scratch`, which the caller removes.
    static func imageJail() async throws -> (configuration: JailConfiguration, image: UnpackedImage, scratch: URL) {
        let (image, scratch) = try await unpackedSmallImage()
        let checkout = scratch.appendingPathComponent("checkout")
        try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)
        try "the task's repository\n".write(to: checkout.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        let configuration = try JailConfiguration(profile: try profile(), checkout: checkout, image: try image.jailImage(name: "small"),
                                                  mountPoint: "/testbed")
        return (configuration, image, scratch)
    }

    @Test("The jail's root is the image: its files and Env are there, the host's /usr is not, the checkout is at /testbed")
    func imageIsTheRoot() async throws {
        let (configuration, image, scratch) = try await Self.imageJail()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let shell = ShellSession(configuration: configuration)
        defer { shell.close() }
        let result = try await shell.run("cat /etc/image-release; echo $IMAGE_GREETING; pwd; cat README; ls /usr/bin | wc -l 2>/dev/null; ls /usr/bin")
        let output = result.stdout.text
        #expect(result.exitCode == 0, "\(result.combined.text)")
        #expect(output.contains("warden test image"))
        #expect(output.contains("from-the-image"))
        #expect(output.contains("/testbed\n"))
        #expect(output.contains("the task's repository"))
        #expect(!output.contains("swift"), "the host's /usr/bin is not visible: \(output)")
        let host = try await shell.run("test -e /usr/bin/tar || test -e /usr/bin/swift || test -e \(FileManager.default.homeDirectoryForCurrentUser.path)/.pyenv")
        #expect(host.exitCode == 1, "no host tool is reachable")
    }

    @Test("Each session writes to a layer of its own; the shared image never changes")
    func writableLayer() async throws {
        let (configuration, image, scratch) = try await Self.imageJail()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let first = ShellSession(configuration: configuration)
        defer { first.close() }
        let wrote = try await first.run("echo changed > /etc/image-release && echo new > /etc/added && cat /etc/image-release")
        #expect(wrote.exitCode == 0, "\(wrote.combined.text)")
        #expect(wrote.stdout.text == "changed\n")
        // The layer survives a restart of the jail (a timeout kills the whole jail).
        let timedOut = try await first.run("sleep 30", timeout: 0.5)
        #expect(timedOut.timedOut)
        #expect(try await first.run("cat /etc/added").stdout.text == "new\n")

        let second = ShellSession(configuration: configuration)
        defer { second.close() }
        let fresh = try await second.run("cat /etc/image-release; test -e /etc/added || echo absent")
        #expect(fresh.stdout.text == "warden test image\nabsent\n")
        #expect(try String(contentsOf: image.rootfs.appendingPathComponent("etc/image-release"), encoding: .utf8) == "warden test image\n")
        #expect(!FileManager.default.fileExists(atPath: image.rootfs.appendingPathComponent("etc/added").path))
    }

    @Test("The read-only fallback: the image's files, a writable checkout, /tmp and home, nothing else writable")
    func readOnlyImageRoot() async throws {
        var (configuration, _, scratch) = try await Self.imageJail()
        defer { try? FileManager.default.removeItem(at: scratch) }
        configuration.profile.imageRoot = .readOnly
        let shell = ShellSession(configuration: configuration)
        defer { shell.close() }
        let result = try await shell.run("""
            cat /etc/image-release; echo $IMAGE_GREETING; pwd
            echo a > /testbed/new && echo b > /tmp/new && echo c > "$HOME/new" && echo writable
            echo d > /etc/new 2>/dev/null || echo refused
            """)
        #expect(result.stdout.text == "warden test image\nfrom-the-image\n/testbed\nwritable\nrefused\n", "\(result.combined.text)")
        #expect(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("checkout/new").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("warden-layer-\(getpid())-") }.isEmpty,
                "no overlay layer is made")
    }

    @Test("Profiles and tasks must agree on the root")
    func profileMismatch() async throws {
        let (configuration, image, scratch) = try await Self.imageJail()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let checkout = URL(fileURLWithPath: configuration.checkoutSource)
        #expect { try JailConfiguration(profile: try Self.profile(), checkout: checkout) } throws: { ($0 as? WardenError)?.code == "jail.image" }
        #expect {
            try JailConfiguration(profile: try Self.profile("agent"), checkout: checkout, image: try image.jailImage(name: "small"))
        } throws: { ($0 as? WardenError)?.code == "jail.image" }
        #expect(try Self.profile("tests-image").rootfs == .image)
        // A task with an image swaps the host profile for its -image variant, keeping a tighter memory cap.
        var agent = try Self.profile("agent")
        agent.limits.memoryMB = 512
        let variant = try agent.forImage()
        #expect(variant.name == "agent-image" && variant.rootfs == .image && variant.limits.memoryMB == 512)
    }
}

@Suite("Image users")
struct ImageUserTests {
    /// A session in an image whose `User` is `user`, over a checkout with one file.
    static func session(user: String) async throws -> (shell: ShellSession, checkout: URL, scratch: URL) {
        let scratch = try temporaryDirectory("image-user")
        let layout = try TestImages.withUser(user, in: scratch)
        let image = try await ImageStore(directory: scratch.appendingPathComponent("store")).prepare(try ImageName("oci:" + layout.path))
        let checkout = scratch.appendingPathComponent("checkout")
        try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)
        try "base\n".write(to: checkout.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        let configuration = try JailConfiguration(profile: try ImageJailTests.profile(), checkout: checkout,
                                                  image: try image.jailImage(name: "user"), mountPoint: "/testbed")
        return (ShellSession(configuration: configuration), checkout, scratch)
    }

    @Test("The image's User runs the jail, by name or by ids, and can still edit the checkout", arguments: [
        ("agent", "1000 1000 agent"), ("1000", "1000 1000 agent"), ("agent:staff", "1000 50 agent"), ("1234:5", "1234 5 1234"),
    ])
    func runsAsTheImageUser(user: String, expected: String) async throws {
        let (shell, checkout, scratch) = try await Self.session(user: user)
        defer { shell.close(); try? FileManager.default.removeItem(at: scratch) }
        let result = try await shell.run("""
            echo "$(id -u) $(id -g) $USER"
            echo edited >> README && touch created && stat -c %u README created
            """)
        #expect(result.exitCode == 0, "\(result.combined.text)")
        let uid = expected.split(separator: " ")[0]
        #expect(result.stdout.text == "\(expected)\n\(uid)\n\(uid)\n", "\(result.combined.text)")
        #expect(try String(contentsOf: checkout.appendingPathComponent("README"), encoding: .utf8) == "base\nedited\n")
        var info = stat()
        #expect(stat(checkout.appendingPathComponent("created").path, &info) == 0)
        #expect(info.st_uid == geteuid(), "files the user creates are the checkout owner's on the host")
    }

    @Test("A User the image does not list is a clear error")
    func unknownUser() async throws {
        let scratch = try temporaryDirectory("image-user")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let layout = try TestImages.withUser("ghost", in: scratch)
        let image = try await ImageStore(directory: scratch.appendingPathComponent("store")).prepare(try ImageName("oci:" + layout.path))
        #expect(throws: WardenError.self) { try image.jailImage(name: "user") }
        do { _ = try image.jailImage(name: "user") } catch let error as WardenError {
            #expect(error.message.contains("\"ghost\", which its /etc/passwd does not list"))
        }
    }
}
