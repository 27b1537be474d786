import Foundation
import Logging
import Sandbox
import WardenCore

/// An image unpacked in the store, ready to be a jail's read-only root.
public struct UnpackedImage: Sendable, Hashable {
    /// The config blob's digest.
    public var id: Digest
    /// The flattened root filesystem; never written after it is published.
    public var rootfs: URL
    public var configuration: ImageConfiguration
}

/// The content-addressed store of unpacked images, under `directory`:
/// - `images/<config hex>/rootfs` and `config.json`: one flattened copy per image, shared
///   read-only by every jail;
/// - `blobs/sha256/<hex>`: layers downloaded from a registry (kept, so a re-unpack needs no network);
/// - `locks/<config hex>.lock`: held while one process pulls and unpacks an image; the others wait.
///
/// An image is unpacked into `images/.partial-<hex>-<pid>` and renamed into place only when
/// every layer is in (a `PublishedDirectory`), so a crash leaves only a partial directory,
/// which the next pull of that image removes.
public struct ImageStore: Sendable {
    public var directory: URL
    /// Registry access (mirror, credentials); used for registry names only.
    public var registry: RegistryConfiguration
    /// The owner given to unpacked files: the jail's root on the host, so they appear owned by
    /// root inside the jail (a root harness; an unprivileged one owns them itself).
    var owner: (uid: uid_t, gid: gid_t)? {
        let identity = JailIdentity.current
        return identity.uid == geteuid() ? nil : (identity.uid, identity.gid)
    }
    var logger = Logger(label: "warden.images")

    public init(directory: URL = ImageStore.defaultDirectory, registry: RegistryConfiguration = RegistryConfiguration()) {
        self.directory = directory
        self.registry = registry
    }

    /// `$WARDEN_IMAGES`, else `$XDG_CACHE_HOME/warden/images`, else `~/.cache/warden/images`.
    public static var defaultDirectory: URL { WardenCache.directory("images", overriddenBy: "WARDEN_IMAGES") }

    /// The image, pulled and unpacked on first use; later calls (from any process) find it.
    public func prepare(_ name: ImageName) async throws -> UnpackedImage {
        let source: any ImageSource = switch name {
        case let .layout(path, tag): LayoutSource(path: path, tag: tag)
        case let .dockerArchive(path): DockerArchiveSource(path: path)
        case let .registry(reference): RegistrySource(reference: reference, configuration: registry)
        }
        return try await prepare(source)
    }

    func prepare(_ source: any ImageSource) async throws -> UnpackedImage {
        let image = try await source.resolve()
        let images = directory.appendingPathComponent("images")
        let final = images.appendingPathComponent(image.id.hex)
        try await PublishedDirectory.ensure(final, lock: directory.appendingPathComponent("locks/\(image.id.hex).lock")) { partial in
            let rootfs = partial.appendingPathComponent("rootfs")
            try FileManager.default.createDirectory(at: rootfs, withIntermediateDirectories: true)
            if let owner { chown(rootfs.path, owner.uid, owner.gid) }
            let blobs = directory.appendingPathComponent("blobs")
            var layers: [LayerBlob] = []
            for (index, layer) in image.layers.enumerated() {
                layers.append(try await source.fetch(layer, index: index, of: image, blobs: blobs))
            }
            let started = ContinuousClock.now
            let owner = self.owner, fetched = layers
            try await onOwnThread {
                var unpacker = try LayerUnpacker(root: rootfs.path, owner: owner)
                for layer in fetched { try Self.unpack(layer, with: &unpacker) }
                try unpacker.finish()
            }
            try image.rawConfiguration.write(to: partial.appendingPathComponent("config.json"))
            logger.info("unpacked image", metadata: ["image": "\(source.name)", "id": "\(image.id)", "layers": "\(layers.count)",
                                                     "seconds": "\((ContinuousClock.now - started).seconds)"])
        }
        return UnpackedImage(id: image.id, rootfs: final.appendingPathComponent("rootfs"), configuration: image.configuration)
    }

    /// Unpacks one layer, checking its bytes against the expected digest: the compressed
    /// blob's digest (a manifest's) or the tar's (a config's diff_id, as in docker archives).
    private static func unpack(_ layer: LayerBlob, with unpacker: inout LayerUnpacker) throws {
        let raw = HashingSource(try FileRegion(path: layer.location.path, offset: layer.location.offset, length: layer.location.length))
        let tar = HashingSource(try layerStream(raw, context: layer.name))
        _ = try unpacker.apply(tar, context: layer.name)
        let tarDigest = try tar.drainAndFinish(), rawDigest = try raw.drainAndFinish()
        if let expected = layer.expected, expected != rawDigest, expected != tarDigest {
            throw WardenError("image.digest", "the layer's content has digest \(rawDigest), expected \(expected)", context: layer.name)
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension UnpackedImage {
    /// The image as a jail's root, running as the image's `User` (see `jailUser`).
    public func jailImage(name: String) throws -> JailImage {
        JailImage(rootfs: rootfs.path, environment: configuration.environment, workingDirectory: configuration.workingDirectory,
                  name: name, user: try jailUser())
    }
}

/// Tasks' `image` fields as jail images: each image pulled and unpacked once into the store.
public struct TaskImages: Sendable {
    public var store: ImageStore

    public init(store: ImageStore = ImageStore()) {
        self.store = store
    }

    /// The repository the image keeps for its task (see `ImageRepository`).
    public func repository(in image: JailImage) async throws -> URL {
        try await ImageRepository.repository(of: image, store: store)
    }

    /// The task's image, ready to be a jail's root; nil for a task without one.
    public func image(for task: TaskInstance) async throws -> JailImage? {
        guard let name = task.image else { return nil }
        do {
            return try await store.prepare(try ImageName(name)).jailImage(name: name)
        } catch let error as WardenError {
            throw WardenError(error.code, "image \(name): \(error.message)", context: error.context ?? task.instanceID)
        }
    }
}
