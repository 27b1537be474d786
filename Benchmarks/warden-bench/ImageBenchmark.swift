import Foundation
import Images
import ImagesTesting
import Sandbox
import WardenCore

/// Container images: pull and unpack time against GNU tar extracting the same layer, episode
/// (jail and shell) start in an unpacked image against a host-rootfs jail, and the disk that
/// 32 concurrent jails of one image use against 32 copies of it. All in the same run.
func runImageBenchmarks(runs: Int = 20, concurrent: Int = 32) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-images-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }

    // The image: bash, git, coreutils and their libraries, plus 3,000 small files (a
    // site-packages' worth of entries) so the per-file cost shows.
    let rootfs = root.appendingPathComponent("rootfs")
    try TestImages.assembleRootfs(at: rootfs, binaries: ["/bin/bash", "/bin/sh", "/usr/bin/git", "/bin/cat", "/bin/ls", "/usr/bin/env",
                                                         "/bin/grep", "/bin/sed", "/usr/bin/patch", "/bin/true"])
    for package in 0..<100 {
        let directory = rootfs.appendingPathComponent("usr/lib/python3/site-packages/pkg\(package)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for module in 0..<30 {
            try "def f(x):\n    return x + \(module)\n".write(to: directory.appendingPathComponent("m\(module).py"), atomically: false, encoding: .utf8)
        }
    }
    let tar = root.appendingPathComponent("layer.tar")
    try TestImages.tar(rootfs, to: tar)
    let written = try TestImages.writeLayout(layers: [tar], env: ["PATH=/usr/bin:/bin"], workingDir: "/testbed", to: root.appendingPathComponent("layout"))
    let gzipped = try TestImages.gzip(tar)
    let layerMB = Double((try FileManager.default.attributesOfItem(atPath: tar.path)[.size] as? Int) ?? 0) / 1e6
    let registry = try await LoopbackRegistry.start()
    defer { Task { await registry.stop() } }
    registry.add(.init(repository: "bench/image", tag: "1", manifest: written.manifest, blobs: written.blobs))
    let registryConfiguration = RegistryConfiguration(dockerConfig: try registry.dockerConfig(in: root))

    var tarTimes: [Double] = [], unpackTimes: [Double] = [], pullTimes: [Double] = []
    for run in 0..<5 {
        let target = root.appendingPathComponent("gnutar-\(run)")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        tarTimes.append(try measureMilliseconds { try runTool("/usr/bin/tar", ["-xzf", gzipped.path, "-C", target.path]) })
        try FileManager.default.removeItem(at: target)
        let layoutStore = ImageStore(directory: root.appendingPathComponent("store-layout-\(run)"))
        let started = ContinuousClock.now
        _ = try await layoutStore.prepare(try ImageName("oci:" + root.appendingPathComponent("layout").path))
        unpackTimes.append(milliseconds(since: started))
        try FileManager.default.removeItem(at: layoutStore.directory)
        let pullStore = ImageStore(directory: root.appendingPathComponent("store-pull-\(run)"), registry: registryConfiguration)
        let pullStarted = ContinuousClock.now
        _ = try await pullStore.prepare(try ImageName("\(registry.host)/bench/image:1"))
        pullTimes.append(milliseconds(since: pullStarted))
        try FileManager.default.removeItem(at: pullStore.directory)
    }
    let tarMedian = percentile(tarTimes, 0.5), unpackMedian = percentile(unpackTimes, 0.5), pullMedian = percentile(pullTimes, 0.5)
    print("images: layer \(formatted(layerMB, digits: 1)) MB uncompressed, 3,000+ files")
    print("images: GNU tar -xzf (baseline)                median \(formatted(tarMedian, digits: 1)) ms")
    print("images: unpack from an OCI layout              median \(formatted(unpackMedian, digits: 1)) ms, ratio to tar \(formatted(unpackMedian / tarMedian, digits: 2))")
    print("images: pull (loopback registry) and unpack    median \(formatted(pullMedian, digits: 1)) ms, ratio to tar \(formatted(pullMedian / tarMedian, digits: 2))")

    // Jail start: a fresh session's first command, host rootfs and image interleaved.
    let store = ImageStore(directory: root.appendingPathComponent("store"))
    let image = try await store.prepare(try ImageName("oci:" + root.appendingPathComponent("layout").path)).jailImage(name: "bench")
    let checkout = root.appendingPathComponent("checkout")
    try FileManager.default.createDirectory(at: checkout, withIntermediateDirectories: true)
    let host = try JailConfiguration(profile: try SandboxProfile.load("agent"), checkout: checkout)
    let inImage = try JailConfiguration(profile: try SandboxProfile.load("agent-image"), checkout: checkout, image: image, mountPoint: "/testbed")
    var readOnly = inImage
    readOnly.profile.imageRoot = .readOnly
    var starts: [[Double]] = [[], [], []]
    for _ in 0..<runs {
        for (index, configuration) in [host, inImage, readOnly].enumerated() {
            let shell = ShellSession(configuration: configuration)
            starts[index].append(try measureMilliseconds { _ = try shell.run("true") })
            shell.close()
        }
    }
    let hostMedian = percentile(starts[0], 0.5), imageMedian = percentile(starts[1], 0.5), readOnlyMedian = percentile(starts[2], 0.5)
    print("images: jail start, host rootfs (baseline)     median \(formatted(hostMedian, digits: 2)) ms")
    print("images: jail start, in the image (overlayfs)   median \(formatted(imageMedian, digits: 2)) ms, "
        + "+\(formatted(imageMedian - hostMedian, digits: 2)) ms (target <= 50 ms slower)")
    print("images: jail start, image read-only fallback   median \(formatted(readOnlyMedian, digits: 2)) ms, "
        + "+\(formatted(readOnlyMedian - hostMedian, digits: 2)) ms")

    // Disk: 32 jails of the image at once, each writing 1 MB into its layer.
    var sessions: [ShellSession] = []
    for _ in 0..<concurrent {
        let shell = ShellSession(configuration: inImage)
        let wrote = try await shell.run("printf '%*s' 1000000 '' > /root/scratch && echo changed > /etc/changed")
        guard wrote.exitCode == 0 else { throw WardenError("bench.images", "a jail could not write its layer: \(wrote.combined.text)") }
        sessions.append(shell)
    }
    let layers = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())
        .filter { $0.hasPrefix("warden-layer-\(getpid())-") }
        .map { URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent($0) }
    let layerBytes = layers.reduce(0) { $0 + diskBytes($1) }
    let imageBytes = diskBytes(URL(fileURLWithPath: image.rootfs))
    for shell in sessions { shell.close() }
    print("images: \(concurrent) concurrent jails of one image: shared rootfs \(formatted(Double(imageBytes) / 1e6, digits: 1)) MB + "
        + "\(layers.count) layers \(formatted(Double(layerBytes) / 1e6, digits: 1)) MB = \(formatted(Double(imageBytes + layerBytes) / 1e6, digits: 1)) MB; "
        + "\(concurrent) copies would be \(formatted(Double(imageBytes * concurrent) / 1e6, digits: 1)) MB (ratio "
        + "\(formatted(Double(imageBytes + layerBytes) / Double(imageBytes * concurrent), digits: 3)))")
}

private func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

/// Blocks allocated under `directory`, each hard-linked file once.
private func diskBytes(_ directory: URL) -> Int {
    var seen = Set<UInt64>()
    var total = 0
    guard let walker = FileManager.default.enumerator(atPath: directory.path) else { return 0 }
    for case let path as String in walker {
        var info = stat()
        guard lstat(directory.path + "/" + path, &info) == 0, seen.insert(UInt64(info.st_ino)).inserted else { continue }
        total += Int(info.st_blocks) * 512
    }
    return total
}
