import Foundation
@testable import Images
import ImagesTesting
import Testing
import WardenCore

@Suite("Pulling from a registry")
struct RegistryTests {
    /// A registry on loopback holding a two-layer image as `team/app:1`.
    static func registryWithImage(in directory: URL) async throws -> (LoopbackRegistry, Digest) {
        var first = TarWriter(), second = TarWriter()
        first.add("etc/", kind: .directory)
        first.add("etc/os-release", content: "ID=warden-test\n")
        second.add("etc/app.conf", content: "debug = false\n")
        let a = directory.appendingPathComponent("a.tar"), b = directory.appendingPathComponent("b.tar")
        try first.finished().write(to: a)
        try second.finished().write(to: b)
        let written = try TestImages.writeLayout(layers: [a, b], env: ["APP=1"], to: directory.appendingPathComponent("layout"))
        let registry = try await LoopbackRegistry.start()
        registry.add(.init(repository: "team/app", tag: "1", manifest: written.manifest, blobs: written.blobs))
        return (registry, written.config)
    }

    /// A store in `directory` whose docker config holds the registry's credentials.
    static func store(pulling registry: LoopbackRegistry, in directory: URL) throws -> ImageStore {
        ImageStore(directory: directory.appendingPathComponent("store"),
                   registry: RegistryConfiguration(dockerConfig: try registry.dockerConfig(in: directory)))
    }

    @Test("A pull resolves the manifest list to linux/amd64, gets a token with the docker config's credentials, and unpacks")
    func pull() async throws {
        let directory = try temporaryDirectory("registry")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (registry, config) = try await Self.registryWithImage(in: directory)
        defer { Task { await registry.stop() } }
        let store = try Self.store(pulling: registry, in: directory)
        let image = try await store.prepare(try ImageName("\(registry.host)/team/app:1"))
        #expect(image.id == config)
        #expect(try String(contentsOf: image.rootfs.appendingPathComponent("etc/app.conf"), encoding: .utf8) == "debug = false\n")
        #expect(image.configuration.environment == ["APP=1"])
        let requests = registry.requests.withLock { $0 }
        #expect(requests.contains { $0.hasPrefix("/token?") })
        #expect(!requests.contains { $0.contains(String(repeating: "a", count: 64)) }, "the arm64 manifest is never fetched")
        // The layers stay in the store's blobs: a second store-level unpack needs no download.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("store/blobs/sha256").path).count == 2)
    }

    @Test("A mirror serves a registry's images under their usual name")
    func mirror() async throws {
        let directory = try temporaryDirectory("mirror")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (registry, config) = try await Self.registryWithImage(in: directory)
        defer { Task { await registry.stop() } }
        var configuration = RegistryConfiguration(dockerConfig: try registry.dockerConfig(in: directory))
        configuration.mirrors["registry.example.invalid"] = "http://\(registry.host)"
        // The credentials are looked up by the name in the image reference.
        let auth = Data("puller:s3cret".utf8).base64EncodedString()
        let file = directory.appendingPathComponent("mirror-config.json")
        try JSONSerialization.data(withJSONObject: ["auths": ["registry.example.invalid": ["auth": auth]]]).write(to: file)
        configuration.dockerConfig = file
        let store = ImageStore(directory: directory.appendingPathComponent("store"), registry: configuration)
        let image = try await store.prepare(try ImageName("registry.example.invalid/team/app:1"))
        #expect(image.id == config)
    }

    @Test("Wrong credentials and unknown images fail with errors that say what to do")
    func failures() async throws {
        let directory = try temporaryDirectory("registry-fail")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (registry, _) = try await Self.registryWithImage(in: directory)
        defer { Task { await registry.stop() } }
        let wrong = ImageStore(directory: directory.appendingPathComponent("store"),
                               registry: RegistryConfiguration(dockerConfig: try registry.dockerConfig(in: directory, password: "nope")))
        do {
            _ = try await wrong.prepare(try ImageName("\(registry.host)/team/app:1"))
            Issue.record("a pull with wrong credentials succeeded")
        } catch let error as WardenError {
            #expect(error.message.contains("HTTP 401"))
            #expect(error.message.contains("docker-config"), "names the docker config it used: \(error)")
        }
        let right = try Self.store(pulling: registry, in: directory)
        do {
            _ = try await right.prepare(try ImageName("\(registry.host)/team/missing:1"))
            Issue.record("a pull of a missing image succeeded")
        } catch let error as WardenError {
            #expect(error.message.contains("HTTP 404"))
        }
    }

    @Test("Concurrent pulls of one image download each layer once and share one unpacked copy")
    func concurrentPulls() async throws {
        let directory = try temporaryDirectory("concurrent")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (registry, config) = try await Self.registryWithImage(in: directory)
        defer { Task { await registry.stop() } }
        let store = try Self.store(pulling: registry, in: directory)
        let name = try ImageName("\(registry.host)/team/app:1")
        let roots = try await withThrowingTaskGroup(of: URL.self) { group in
            for _ in 0..<6 { group.addTask { try await store.prepare(name).rootfs } }
            return try await group.reduce(into: [URL]()) { $0.append($1) }
        }
        #expect(Set(roots).count == 1)
        // Every pull reads the small manifest and config before it takes the lock; the layers
        // are downloaded by the one that gets it.
        let layerGets = registry.requests.withLock { $0 }.filter { $0.contains("/blobs/") && !$0.contains(config.hex) }
        #expect(layerGets.count == 2, "layer blobs fetched: \(layerGets)")
    }
}
