import ArgumentParser
import Foundation
import Sandbox

/// `warden doctor`: checks what the host gives the jail and says how to fix what it lacks.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the kernel, user namespaces, cgroups, overlayfs, libseccomp and toolchains; start a jail.",
        discussion: "Exits 1 when a check failed (the jail cannot work here), 0 otherwise; warnings name what is degraded."
    )

    @Option(name: .long, help: "The profile whose jail is started as the last check.")
    var profile = "agent"

    func run() throws {
        print("warden \(WardenVersion.current)")
        let checks = Doctor(smokeTestProfile: try SandboxProfile.load(profile)).run()
        let width = checks.map(\.name.count).max() ?? 0
        for check in checks {
            let mark = switch check.verdict {
            case .ok: "ok  "
            case .warning: "warn"
            case .failed: "FAIL"
            }
            print("\(mark)  \(check.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(check.detail)")
            if let fix = check.fix { print("      \(String(repeating: " ", count: width))  fix: \(fix)") }
        }
        let failed = checks.filter { $0.verdict == .failed }.count
        let warned = checks.filter { $0.verdict == .warning }.count
        print(failed == 0 ? "the jail works here" + (warned > 0 ? " (\(warned) warning\(warned == 1 ? "" : "s"))" : "")
                          : "\(failed) check\(failed == 1 ? "" : "s") failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
