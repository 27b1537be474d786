import Foundation
import Images

// Test images built from the host's own binaries, and tar archives written entry by entry:
// shared by the tests and the benchmarks, never by the product.

/// Runs a host tool; a failure throws with its output.
@discardableResult
public func runTool(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) failed: \(text)")
    }
    return text
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes tar archives entry by entry, including the entries real tools refuse to make
/// (`../` names, absolute names, links out of the tree).
public struct TarWriter {
    public init() {}

    private(set) var bytes: [UInt8] = []

    public enum Kind: UInt8, Sendable {
        case file = 48, hardLink = 49, symlink = 50, directory = 53
    }

    public mutating func add(_ name: String, kind: Kind = .file, content: String = "", link: String = "", mode: Int = 0o644) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, length: Int) {
            for (index, byte) in text.utf8.prefix(length).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, length: Int) {
            put(String(String(value, radix: 8).suffix(length - 1)).leftPadded(to: length - 1), at: offset, length: length - 1)
        }
        let data = Array(content.utf8)
        put(name, at: 0, length: 100)
        octal(mode, at: 100, length: 8)
        octal(0, at: 108, length: 8)
        octal(0, at: 116, length: 8)
        octal(kind == .file ? data.count : 0, at: 124, length: 12)
        octal(1_700_000_000, at: 136, length: 12)
        header[156] = kind.rawValue
        put(link, at: 157, length: 100)
        put("ustar", at: 257, length: 6)
        put("00", at: 263, length: 2)
        for index in 148..<156 { header[index] = 32 }
        let sum = header.reduce(0) { $0 + Int($1) }
        put(String(String(sum, radix: 8)).leftPadded(to: 6), at: 148, length: 6)
        header[154] = 0
        bytes += header
        if kind == .file {
            bytes += data
            bytes += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
        }
    }

    public func finished() -> Data { Data(bytes + [UInt8](repeating: 0, count: 1024)) }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}

/// Test images made from the host's own binaries and their libraries (found with ldd), in a
/// merged-/usr layout like Debian's, packed by GNU tar and gzip.
public enum TestImages {
    /// Copies `binaries` (host paths) and the libraries they load into `root/usr/...`, with the
    /// `bin`, `lib`, `lib64` and `sbin` links.
    public static func assembleRootfs(at root: URL, binaries: [String]) throws {
        var files = Set<String>()
        for binary in binaries {
            let real = URL(fileURLWithPath: binary).resolvingSymlinksInPath().path
            files.insert(real)
            for line in try runTool("/usr/bin/ldd", [real]).split(separator: "\n") {
                // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
                let fields = line.split(separator: " ").map(String.init)
                if let arrow = fields.firstIndex(of: "=>"), arrow + 1 < fields.count, fields[arrow + 1].hasPrefix("/") {
                    files.insert(fields[arrow + 1])
                } else if let first = fields.first?.trimmingCharacters(in: .whitespaces), first.hasPrefix("/") {
                    files.insert(first)
                }
            }
        }
        for file in files {
            // Merged /usr: /lib/x86_64-linux-gnu/libc.so.6 lives in usr/lib/...
            var path = file
            for prefix in ["/bin/", "/lib/", "/lib64/", "/sbin/"] where path.hasPrefix(prefix) { path = "/usr" + path }
            let target = root.appendingPathComponent(String(path.dropFirst()))
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: target.path) {
                try FileManager.default.copyItem(at: URL(fileURLWithPath: file).resolvingSymlinksInPath(), to: target)
            }
        }
        for binary in binaries {
            let name = URL(fileURLWithPath: binary).lastPathComponent
            let real = URL(fileURLWithPath: binary).resolvingSymlinksInPath().lastPathComponent
            let link = root.appendingPathComponent("usr/bin/" + name)
            if name != real && !FileManager.default.fileExists(atPath: link.path) {
                try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: real)
            }
        }
        for (link, target) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/bin")] {
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent(link).path, withDestinationPath: target)
        }
        for directory in ["etc", "tmp", "root", "usr/lib64"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        if !FileManager.default.fileExists(atPath: root.appendingPathComponent("usr/lib64/ld-linux-x86-64.so.2").path) {
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("usr/lib64/ld-linux-x86-64.so.2").path,
                                                       withDestinationPath: "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        }
    }

    /// A plain tar of a directory's contents, as `docker save` stores layers.
    public static func tar(_ directory: URL, to file: URL) throws {
        try runTool("/usr/bin/tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", directory.path, "-cf", file.path, "."])
    }

    public static func gzip(_ file: URL) throws -> URL {
        try runTool("/usr/bin/gzip", ["-n", "-k", "-f", file.path])
        return URL(fileURLWithPath: file.path + ".gz")
    }

    public static func config(env: [String], workingDir: String?, user: String? = nil, diffIDs: [Digest]) throws -> Data {
        var inner: [String: Any] = ["Env": env]
        if let workingDir { inner["WorkingDir"] = workingDir }
        if let user { inner["User"] = user }
        let object: [String: Any] = ["architecture": "amd64", "os": "linux", "config": inner,
                                     "rootfs": ["type": "layers", "diff_ids": diffIDs.map(\.description)]]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// An OCI image layout with the gzipped layers, tagged `tag`; returns the config digest.
    @discardableResult
    public static func writeLayout(layers tars: [URL], env: [String] = [], workingDir: String? = nil, user: String? = nil, to layout: URL,
                            tag: String = "latest") throws -> (config: Digest, manifest: Data, configData: Data, blobs: [Digest: Data]) {
        let blobs = layout.appendingPathComponent("blobs/sha256")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        var all: [Digest: Data] = [:]
        func store(_ data: Data) throws -> Digest {
            let digest = Digest.of(data)
            try data.write(to: blobs.appendingPathComponent(digest.hex))
            all[digest] = data
            return digest
        }
        var layerDescriptors: [[String: Any]] = []
        var diffIDs: [Digest] = []
        for tar in tars {
            diffIDs.append(Digest.of(try Data(contentsOf: tar)))
            let compressed = try Data(contentsOf: try gzip(tar))
            layerDescriptors.append(["mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": try store(compressed).description,
                                     "size": compressed.count])
        }
        let configData = try config(env: env, workingDir: workingDir, user: user, diffIDs: diffIDs)
        let configDigest = try store(configData)
        let manifest = try JSONSerialization.data(withJSONObject: [
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest.description, "size": configData.count],
            "layers": layerDescriptors,
        ] as [String: Any], options: [.sortedKeys])
        let manifestDigest = try store(manifest)
        let index = try JSONSerialization.data(withJSONObject: [
            "schemaVersion": 2,
            "manifests": [["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest.description, "size": manifest.count,
                           "annotations": ["org.opencontainers.image.ref.name": tag]]],
        ] as [String: Any])
        try index.write(to: layout.appendingPathComponent("index.json"))
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: layout.appendingPathComponent("oci-layout"))
        return (configDigest, manifest, configData, all)
    }

    /// A `docker save` archive of the same layers (plain tar members, as docker writes them).
    @discardableResult
    public static func writeDockerArchive(layers tars: [URL], env: [String] = [], workingDir: String? = nil, to archive: URL) throws -> Digest {
        let staging = archive.deletingLastPathComponent().appendingPathComponent("docker-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        var members: [String] = []
        var diffIDs: [Digest] = []
        for tar in tars {
            let data = try Data(contentsOf: tar)
            let digest = Digest.of(data)
            diffIDs.append(digest)
            try FileManager.default.createDirectory(at: staging.appendingPathComponent(digest.hex), withIntermediateDirectories: true)
            try data.write(to: staging.appendingPathComponent("\(digest.hex)/layer.tar"))
            members.append("\(digest.hex)/layer.tar")
        }
        let configData = try config(env: env, workingDir: workingDir, diffIDs: diffIDs)
        let configDigest = Digest.of(configData)
        try configData.write(to: staging.appendingPathComponent("\(configDigest.hex).json"))
        let manifest = try JSONSerialization.data(withJSONObject: [["Config": "\(configDigest.hex).json", "RepoTags": ["test:latest"],
                                                                    "Layers": members]])
        try manifest.write(to: staging.appendingPathComponent("manifest.json"))
        try tar(staging, to: archive)
        return configDigest
    }

    /// A small image: bash, sh, cat, ls, wc, sleep and their libraries, with /etc/image-release and an Env.
    public static func small(in directory: URL) throws -> (layout: URL, archive: URL, config: Digest) {
        let root = directory.appendingPathComponent("small-rootfs")
        try assembleRootfs(at: root, binaries: ["/bin/bash", "/bin/sh", "/bin/cat", "/bin/ls", "/bin/echo", "/usr/bin/wc", "/bin/sleep"])
        try "warden test image\n".write(to: root.appendingPathComponent("etc/image-release"), atomically: true, encoding: .utf8)
        let tarFile = directory.appendingPathComponent("small.tar")
        try tar(root, to: tarFile)
        let env = ["PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_GREETING=from-the-image"]
        let layout = directory.appendingPathComponent("small-layout")
        let written = try writeLayout(layers: [tarFile], env: env, workingDir: "/testbed", to: layout)
        let archive = directory.appendingPathComponent("small-docker.tar")
        try writeDockerArchive(layers: [tarFile], env: env, workingDir: "/testbed", to: archive)
        return (layout, archive, written.config)
    }

    /// The small image plus `id` and `touch`, accounts `agent` (1000:1000) and group `staff`
    /// (50) in its /etc/passwd and /etc/group, and `User` set to `user`; returns the layout.
    public static func withUser(_ user: String, in directory: URL) throws -> URL {
        let root = directory.appendingPathComponent("user-rootfs")
        try assembleRootfs(at: root, binaries: ["/bin/bash", "/bin/sh", "/bin/cat", "/bin/echo", "/usr/bin/id", "/usr/bin/touch", "/usr/bin/stat"])
        try "root:x:0:0:root:/root:/bin/bash\nagent:x:1000:1000::/home/agent:/bin/bash\n"
            .write(to: root.appendingPathComponent("etc/passwd"), atomically: true, encoding: .utf8)
        try "root:x:0:\nstaff:x:50:\nagent:x:1000:\n".write(to: root.appendingPathComponent("etc/group"), atomically: true, encoding: .utf8)
        let tarFile = directory.appendingPathComponent("user.tar")
        try tar(root, to: tarFile)
        let layout = directory.appendingPathComponent("user-layout")
        try writeLayout(layers: [tarFile], env: ["PATH=/usr/bin:/bin"], workingDir: "/testbed", user: user, to: layout)
        return layout
    }
}
