import CSeccomp
import Foundation
import Synchronization
import WardenCore

/// A profile's syscall policy compiled by libseccomp into a classic BPF program.
///
/// The default action is to allow; listed syscalls fail with their errno, namespace-creating
/// clones and dangerous ioctls fail with EPERM, and any foreign architecture (ia32, x32) kills
/// the process. The program is loaded by the helper with prctl, so only this module links
/// libseccomp.
struct SeccompPolicy {
    let syscalls: SandboxProfile.Syscalls
    let file: String

    init(_ syscalls: SandboxProfile.Syscalls, file: String) {
        self.syscalls = syscalls
        self.file = file
    }

    // libseccomp's action macros do not import into Swift.
    private static let actionAllow: UInt32 = 0x7fff_0000
    private static let actionKillProcess: UInt32 = 0x8000_0000
    private static func actionErrno(_ code: Int32) -> UInt32 { 0x0005_0000 | (UInt32(code) & 0xffff) }

    static let errnoNames: [String: Int32] = [
        "EPERM": 1, "ENOENT": 2, "EACCES": 13, "EINVAL": 22, "ENOSYS": 38, "EOPNOTSUPP": 95, "ENOTSUP": 95,
    ]
    static let ioctlNames: [String: UInt64] = [
        "TIOCSTI": 0x5412, "TIOCLINUX": 0x541C, "TIOCCONS": 0x541D, "TIOCSETD": 0x5423,
    ]
    /// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
    static let namespaceFlags: [UInt64] = [0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000]

    private func error(_ field: String, _ message: String) -> WardenError {
        WardenError("profile.invalid", message, context: "\(file): syscalls.\(field)")
    }

    /// Programs already built by this process, by policy: a profile's is built when it is
    /// loaded (to reject a bad policy there) and again for each jail configuration.
    private static let compiled = Mutex<[SandboxProfile.Syscalls: [UInt8]]>([:])

    /// The filter's BPF instructions (8 bytes each), built once per policy and process.
    func compile() throws -> [UInt8] {
        if let program = Self.compiled.withLock({ $0[syscalls] }) { return program }
        let program = try build()
        Self.compiled.withLock { $0[syscalls] = program }
        return program
    }

    /// Builds the filter with libseccomp.
    private func build() throws -> [UInt8] {
        guard let context = seccomp_init(Self.actionAllow) else {
            throw WardenError("seccomp.init", "libseccomp could not create a filter")
        }
        defer { seccomp_release(context) }
        guard seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, Self.actionKillProcess) == 0 else {
            throw WardenError("seccomp.init", "libseccomp refused the foreign-architecture action")
        }

        for (errnoName, names) in syscalls.errno.sorted(by: { $0.key < $1.key }) {
            guard let code = Self.errnoNames[errnoName] else {
                throw error("errno.\(errnoName)", "unknown errno; expected one of \(Self.errnoNames.keys.sorted().joined(separator: ", "))")
            }
            for (index, name) in names.enumerated() {
                let number = seccomp_syscall_resolve_name(name)
                guard number != __NR_SCMP_ERROR else {
                    throw error("errno.\(errnoName)[\(index)]", "unknown syscall \"\(name)\"")
                }
                let result = seccomp_rule_add_array(context, Self.actionErrno(code), number, 0, nil)
                guard result == 0 else {
                    throw error("errno.\(errnoName)[\(index)]", "libseccomp refused a rule for \"\(name)\" (\(String(cString: strerror(-result))))")
                }
            }
        }

        if syscalls.denyNamespaceClone {
            let clone = seccomp_syscall_resolve_name("clone")
            for flag in Self.namespaceFlags {
                var condition = scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: flag, datum_b: flag)
                let result = seccomp_rule_add_array(context, Self.actionErrno(1), clone, 1, &condition)
                guard result == 0 else {
                    throw error("deny_namespace_clone", "libseccomp refused the clone rule (\(String(cString: strerror(-result))))")
                }
            }
        }

        let ioctl = seccomp_syscall_resolve_name("ioctl")
        for (index, name) in syscalls.denyIoctls.enumerated() {
            guard let request = Self.ioctlNames[name] else {
                throw error("deny_ioctls[\(index)]", "unknown ioctl \"\(name)\"; expected one of \(Self.ioctlNames.keys.sorted().joined(separator: ", "))")
            }
            // The request is an int: compare the low 32 bits so high garbage cannot slip past.
            var condition = scmp_arg_cmp(arg: 1, op: SCMP_CMP_MASKED_EQ, datum_a: 0xffff_ffff, datum_b: request)
            let result = seccomp_rule_add_array(context, Self.actionErrno(1), ioctl, 1, &condition)
            guard result == 0 else {
                throw error("deny_ioctls[\(index)]", "libseccomp refused the rule (\(String(cString: strerror(-result))))")
            }
        }
        return try export(context)
    }

    /// libseccomp 2.5 exports only to a file descriptor; a pipe holds the few hundred bytes.
    private func export(_ context: scmp_filter_ctx) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw WardenError("seccomp.export", "cannot create a pipe: \(String(cString: strerror(errno)))") }
        defer { close(fds[0]) }
        let result = seccomp_export_bpf(context, fds[1])
        close(fds[1])
        guard result == 0 else {
            throw WardenError("seccomp.export", "libseccomp could not export the filter (\(String(cString: strerror(-result))))")
        }
        var program: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            program.append(contentsOf: buffer[0..<count])
        }
        return program
    }
}
