import Foundation
@testable import Images
import ImagesTesting
import Testing
import Sandbox
import WardenCore

@Suite("Image sources and unpacking")
struct UnpackTests {
    /// The two-layer image: files, modes, symlinks and hard links in the first; a whiteout,
    /// an opaque directory, a replaced file and a new hard link in the second.
    static func layeredImage(in directory: URL) throws -> URL {
        var base = TarWriter()
        base.add("etc/", kind: .directory, mode: 0o755)
        base.add("etc/keep", content: "kept\n")
        base.add("etc/gone", content: "to be whited out\n")
        base.add("etc/replaced", content: "old\n")
        base.add("opt/", kind: .directory)
        base.add("opt/old-a", content: "a")
        base.add("opt/old-b", content: "b")
        base.add("bin/", kind: .directory)
        base.add("bin/tool", content: "#!/bin/sh\necho tool\n", mode: 0o755)
        base.add("bin/suid", content: "x", mode: 0o4755)
        base.add("bin/tool-link", kind: .hardLink, link: "bin/tool")
        base.add("bin/relative", kind: .symlink, link: "tool")
        base.add("bin/absolute", kind: .symlink, link: "/etc/keep")
        base.add("ro/", kind: .directory, mode: 0o555)
        base.add("ro/inside", content: "in a read-only directory")
        var top = TarWriter()
        top.add("etc/.wh.gone")
        top.add("etc/replaced", content: "new\n")
        top.add("opt/.wh..wh..opq")
        top.add("opt/fresh", content: "fresh")
        top.add("etc/keep-link", kind: .hardLink, link: "etc/keep")
        let layout = directory.appendingPathComponent("layered")
        let first = directory.appendingPathComponent("base.tar"), second = directory.appendingPathComponent("top.tar")
        try base.finished().write(to: first)
        try top.finished().write(to: second)
        try TestImages.writeLayout(layers: [first, second], env: ["A=1"], workingDir: "/work", to: layout, tag: "v1")
        return layout
    }

    @Test("An OCI layout unpacks with whiteouts, opaque directories, links and modes")
    func layersApply() async throws {
        let directory = try temporaryDirectory("layers")
        defer { try? FileManager.default.removeItem(at: directory) }
        let layout = try Self.layeredImage(in: directory)
        let store = ImageStore(directory: directory.appendingPathComponent("store"))
        let image = try await store.prepare(try ImageName("oci:\(layout.path):v1"))
        let root = image.rootfs
        func text(_ path: String) -> String? { try? String(contentsOf: root.appendingPathComponent(path), encoding: .utf8) }
        #expect(text("etc/keep") == "kept\n")
        #expect(text("etc/replaced") == "new\n")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("etc/gone").path))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("etc/.wh.gone").path))
        let opt = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("opt").path)
        #expect(opt == ["fresh"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent("bin/relative").path) == "tool")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent("bin/absolute").path) == "/etc/keep")
        var tool = stat(), link = stat(), suid = stat(), readOnly = stat(), keep = stat(), keepLink = stat()
        stat(root.appendingPathComponent("bin/tool").path, &tool)
        stat(root.appendingPathComponent("bin/tool-link").path, &link)
        stat(root.appendingPathComponent("bin/suid").path, &suid)
        stat(root.appendingPathComponent("ro").path, &readOnly)
        stat(root.appendingPathComponent("etc/keep").path, &keep)
        stat(root.appendingPathComponent("etc/keep-link").path, &keepLink)
        #expect(tool.st_mode & 0o7777 == 0o755)
        #expect(tool.st_ino == link.st_ino && tool.st_nlink == 2)
        #expect(keep.st_ino == keepLink.st_ino, "a hard link to a lower layer's file")
        #expect(suid.st_mode & 0o7777 == 0o755, "set-uid bits are dropped")
        #expect(readOnly.st_mode & 0o7777 == 0o555)
        #expect(text("ro/inside") == "in a read-only directory")
        #expect(tool.st_mtim.tv_sec == 1_700_000_000)
        #expect(image.configuration.environment == ["A=1"])
        #expect(image.configuration.workingDirectory == "/work")
        if geteuid() == 0 { #expect(tool.st_uid == JailIdentity.unprivilegedRoot.uid, "a root harness gives the files to the jail's root") }
    }

    @Test("An OCI layout and a docker save archive of one image unpack to the same tree, found again without unpacking")
    func layoutAndArchiveAgree() async throws {
        let directory = try temporaryDirectory("sources")
        defer { try? FileManager.default.removeItem(at: directory) }
        let small = try TestImages.small(in: directory)
        let fromLayout = try await ImageStore(directory: directory.appendingPathComponent("a")).prepare(try ImageName("oci:" + small.layout.path))
        let fromArchive = try await ImageStore(directory: directory.appendingPathComponent("b"))
            .prepare(try ImageName("docker-archive:" + small.archive.path))
        #expect(fromLayout.id == small.config)
        #expect(fromArchive.id == small.config, "the same config blob is the same image")
        for path in ["etc/image-release", "usr/bin/cat", "usr/bin/sh"] {
            #expect(FileManager.default.contentsEqual(atPath: fromLayout.rootfs.appendingPathComponent(path).path,
                                                      andPath: fromArchive.rootfs.appendingPathComponent(path).path), "\(path)")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: fromArchive.rootfs.appendingPathComponent("bin").path) == "usr/bin")
        #expect(fromArchive.configuration.environment.contains("IMAGE_GREETING=from-the-image"))

        // A second prepare finds the published copy: change it and the change is still there.
        let marker = fromLayout.rootfs.appendingPathComponent("marker")
        try Data("x".utf8).write(to: marker)
        let again = try await ImageStore(directory: directory.appendingPathComponent("a")).prepare(try ImageName("oci:" + small.layout.path))
        #expect(again.rootfs == fromLayout.rootfs)
        #expect(FileManager.default.fileExists(atPath: marker.path))
    }

    @Test("A corrupted layer blob is refused by its digest", .timeLimit(.minutes(1)))
    func corruptedLayer() async throws {
        let directory = try temporaryDirectory("corrupt")
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TarWriter()
        writer.add("file", content: "original")
        let tar = directory.appendingPathComponent("layer.tar")
        try writer.finished().write(to: tar)
        let layout = directory.appendingPathComponent("layout")
        try TestImages.writeLayout(layers: [tar], to: layout)
        // Swap the layer blob for another valid gzip stream with the same name.
        let manifestIndex = try JSONSerialization.jsonObject(with: try Data(contentsOf: layout.appendingPathComponent("index.json"))) as? [String: Any]
        let manifestDigest = try Digest((((manifestIndex?["manifests"] as? [[String: Any]])?.first)?["digest"] as? String) ?? "")
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: try Data(contentsOf: layout.appendingPathComponent("blobs/sha256/\(manifestDigest.hex)")))
        var other = TarWriter()
        other.add("file", content: "tampered")
        let tampered = directory.appendingPathComponent("tampered.tar")
        try other.finished().write(to: tampered)
        try FileManager.default.removeItem(at: layout.appendingPathComponent("blobs/sha256/\(manifest.layers[0].digest.hex)"))
        try FileManager.default.copyItem(at: try TestImages.gzip(tampered), to: layout.appendingPathComponent("blobs/sha256/\(manifest.layers[0].digest.hex)"))
        let store = ImageStore(directory: directory.appendingPathComponent("store"))
        await #expect { try await store.prepare(try ImageName("oci:" + layout.path)) } throws: { ($0 as? WardenError)?.code == "image.digest" }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("store/images").path).isEmpty,
                "nothing published, no partial left")
    }

    @Test("Layers that try to write outside the root are refused and write nothing outside", arguments: [
        ("dot-dot", [("../escaped", TarWriter.Kind.file, "")]),
        ("nested dot-dot", [("a/../../escaped", .file, "")]),
        ("absolute path", [("/tmp/escaped", .file, "")]),
        ("symlink climbing out", [("up", .symlink, "../../../../../../../../tmp")]),
        ("hard link climbing out", [("stolen", .hardLink, "../../../../../etc/hostname")]),
        ("absolute hard link", [("stolen", .hardLink, "/etc/hostname")]),
    ])
    func escapesRefused(_ name: String, _ entries: [(String, TarWriter.Kind, String)]) async throws {
        let directory = try temporaryDirectory("escape")
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TarWriter()
        writer.add("ok", content: "fine")
        for (path, kind, link) in entries { writer.add(path, kind: kind, content: "pwned", link: link) }
        let tar = directory.appendingPathComponent("evil.tar")
        try writer.finished().write(to: tar)
        let layout = directory.appendingPathComponent("layout")
        try TestImages.writeLayout(layers: [tar], to: layout)
        let store = ImageStore(directory: directory.appendingPathComponent("store"))
        await #expect(throws: WardenError.self, "\(name)") { try await store.prepare(try ImageName("oci:" + layout.path)) }
        do {
            _ = try await store.prepare(try ImageName("oci:" + layout.path))
        } catch let error as WardenError {
            #expect(error.code == "image.unsafe", "\(name): \(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("store/images/escaped").path))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("store/escaped").path))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/escaped"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("store/images").path).isEmpty)
    }

    @Test("Entries below an absolute symlink land inside the root, never on the host")
    func symlinkParentsStayInside() async throws {
        let directory = try temporaryDirectory("symlink-parent")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The link names a real host directory; the file under it must not reach it.
        let hostTarget = directory.appendingPathComponent("host-side")
        try FileManager.default.createDirectory(at: hostTarget, withIntermediateDirectories: true)
        var writer = TarWriter()
        writer.add("top", kind: .symlink, link: "/")
        writer.add("top/marker", content: "inside")
        writer.add("hostdir", kind: .symlink, link: hostTarget.path)
        writer.add("rootlink", kind: .symlink, link: "/")
        writer.add("rootlink" + hostTarget.path + "-sibling/", kind: .directory)
        let tar = directory.appendingPathComponent("links.tar")
        try writer.finished().write(to: tar)
        let layout = directory.appendingPathComponent("layout")
        try TestImages.writeLayout(layers: [tar], to: layout)
        let image = try await ImageStore(directory: directory.appendingPathComponent("store")).prepare(try ImageName("oci:" + layout.path))
        #expect(try String(contentsOf: image.rootfs.appendingPathComponent("marker"), encoding: .utf8) == "inside")
        #expect(FileManager.default.fileExists(atPath: image.rootfs.appendingPathComponent(String(hostTarget.path.dropFirst()) + "-sibling").path))
        #expect(!FileManager.default.fileExists(atPath: hostTarget.path + "-sibling"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: hostTarget.path).isEmpty)

        // A file written through the link to the host directory fails rather than landing there.
        var through = TarWriter()
        through.add("hostdir", kind: .symlink, link: hostTarget.path)
        through.add("hostdir/pwned", content: "x")
        try through.finished().write(to: tar)
        let second = directory.appendingPathComponent("layout2")
        try TestImages.writeLayout(layers: [tar], to: second)
        _ = try? await ImageStore(directory: directory.appendingPathComponent("store2")).prepare(try ImageName("oci:" + second.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: hostTarget.path).isEmpty)
    }

    @Test("A partial unpack left by a crash is removed and never used")
    func crashLeftovers() async throws {
        let directory = try temporaryDirectory("crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TarWriter()
        writer.add("complete", content: "yes")
        let tar = directory.appendingPathComponent("layer.tar")
        try writer.finished().write(to: tar)
        let layout = directory.appendingPathComponent("layout")
        let written = try TestImages.writeLayout(layers: [tar], to: layout)
        let images = directory.appendingPathComponent("store/images")
        let partial = images.appendingPathComponent(".partial-\(written.config.hex)-424242/rootfs")
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        try Data("half".utf8).write(to: partial.appendingPathComponent("half-written"))
        let image = try await ImageStore(directory: directory.appendingPathComponent("store")).prepare(try ImageName("oci:" + layout.path))
        #expect(image.rootfs.path == images.appendingPathComponent("\(written.config.hex)/rootfs").path)
        #expect(!FileManager.default.fileExists(atPath: image.rootfs.appendingPathComponent("half-written").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: images.path) == [written.config.hex])
    }

    @Test("Image names: transports, Docker Hub normalization, SWE-bench's template")
    func names() throws {
        #expect(try ImageName("oci:/images/x:v2") == .layout(path: "/images/x", tag: "v2"))
        #expect(try ImageName("oci:/images/x") == .layout(path: "/images/x", tag: nil))
        #expect(try ImageName("docker-archive:/a.tar") == .dockerArchive(path: "/a.tar"))
        let hub = try ImageReference("python")
        #expect(hub.registry == "docker.io" && hub.repository == "library/python" && hub.tag == "latest")
        let local = try ImageReference("localhost:5000/team/app:1.0")
        #expect(local.registry == "localhost:5000" && local.repository == "team/app" && local.tag == "1.0")
        #expect(throws: WardenError.self) { try ImageReference("Bad/Name") }
        #expect(ImageTemplate.expand("swebench/sweb.eval.x86_64.{instance}:latest", instanceID: "django__django-11099")
            == "swebench/sweb.eval.x86_64.django_1776_django-11099:latest")
        #expect(ImageTemplate.expand("{id}", instanceID: "a__b") == "a__b")
    }
}
