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
/// every layer is in, so a crash leaves only a partial directory, which the next pull of that
/// image removes (it holds the lock, so no one else is writing there).
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
    public static var defaultDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["WARDEN_IMAGES"], !path.isEmpty { return URL(fileURLWithPath: path) }
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("warden/images")
    }

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
        if let ready = published(image) { return ready }
        let lock = try await ImageLock.acquire(directory.appendingPathComponent("locks/\(image.id.hex).lock").path)
        defer { lock.release() }
        if let ready = published(image) { return ready }  // another process finished while we waited

        let images = directory.appendingPathComponent("images")
        try removePartials(of: image.id, in: images)
        let partial = images.appendingPathComponent(".partial-\(image.id.hex)-\(getpid())")
        let rootfs = partial.appendingPathComponent("rootfs")
        do {
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
            let final = images.appendingPathComponent(image.id.hex)
            guard rename(partial.path, final.path) == 0 else {
                throw WardenError("image.store", "cannot publish the unpacked image: \(String(cString: strerror(errno)))", context: final.path)
            }
            logger.info("unpacked image", metadata: ["image": "\(source.name)", "id": "\(image.id)", "layers": "\(layers.count)",
                                                     "seconds": "\((ContinuousClock.now - started).seconds)"])
        } catch {
            do { try FileManager.default.removeItem(at: partial) } catch let cleanup {
                logger.debug("cannot remove a partial image", metadata: ["path": "\(partial.path)", "error": "\(cleanup)"])
            }
            throw error
        }
        guard let ready = published(image) else {
            throw WardenError("image.store", "the image vanished right after it was unpacked", context: images.path)
        }
        return ready
    }

    /// The image when it is already unpacked (published directories are complete by construction).
    private func published(_ image: ResolvedImage) -> UnpackedImage? {
        let rootfs = directory.appendingPathComponent("images/\(image.id.hex)/rootfs")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: rootfs.path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        return UnpackedImage(id: image.id, rootfs: rootfs, configuration: image.configuration)
    }

    /// Partial directories of this image left by a process that died (the caller holds the lock).
    private func removePartials(of id: Digest, in images: URL) throws {
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: images.path) where name.hasPrefix(".partial-\(id.hex)-") {
            try FileManager.default.removeItem(at: images.appendingPathComponent(name))
        }
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

/// An exclusive `flock` on a lock file, polled so a waiting task stays cancellable and holds no
/// thread. The kernel drops it when the holder dies, so a crash never leaves it taken.
final class ImageLock {
    private var descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    static func acquire(_ path: String) async throws -> ImageLock {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw WardenError("image.lock", "cannot open the lock: \(String(cString: strerror(errno)))", context: path) }
        let lock = ImageLock(descriptor: descriptor)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw WardenError("image.lock", "cannot lock: \(String(cString: strerror(errno)))", context: path)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return lock
    }

    func release() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    deinit { release() }
}

extension UnpackedImage {
    /// The image as a jail's root. Image jails run as root: an image whose `User` is someone
    /// else still gets root, with a warning (its files are all the jail root's in the store).
    public func jailImage(name: String, logger: Logger = Logger(label: "warden.images")) -> JailImage {
        if let user = configuration.user, !user.isEmpty, !["root", "0", "0:0", "root:root"].contains(user) {
            logger.warning("the image asks to run as \(user); Warden runs image jails as root", metadata: ["image": "\(name)"])
        }
        return JailImage(rootfs: rootfs.path, environment: configuration.environment,
                         workingDirectory: configuration.workingDirectory, name: name)
    }
}

/// Tasks' `image` fields as jail images: each image pulled and unpacked once into the store.
public struct TaskImages: Sendable {
    public var store: ImageStore

    public init(store: ImageStore = ImageStore()) {
        self.store = store
    }

    /// The task's image, ready to be a jail's root; nil for a task without one.
    public func image(for task: TaskInstance) async throws -> JailImage? {
        guard let name = task.image else { return nil }
        let image: UnpackedImage
        do {
            image = try await store.prepare(try ImageName(name))
        } catch let error as WardenError {
            throw WardenError(error.code, "image \(name): \(error.message)", context: error.context ?? task.instanceID)
        }
        return image.jailImage(name: name)
    }
}
