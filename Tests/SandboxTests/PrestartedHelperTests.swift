import Foundation
import Testing
@testable import Sandbox

/// A helper started before its jail is configured serves the first shell, and one nobody
/// takes ends instead of lingering.
@Suite struct PrestartedHelperTests {
    @Test func theFirstShellRunsOnThePrestartedHelper() throws {
        let checkout = try TempCheckout()
        defer { checkout.cleanup() }
        let shell = try makeShell(checkout)
        defer { shell.close() }
        JailConfiguration.prestartShellHelper()
        let prestarted = try #require(PrestartedShellHelper.take(path: shell.configuration.helperPath))
        PrestartedShellHelper.Slot.shared.end(prestarted)  // put back, as if just started
        #expect(try shell.run("echo jailed; id -u").stdout.text == "jailed\n0\n")
        #expect(try shell.withRunningJail { process, _ in process.pid } == prestarted.pid)
        // The next shell has none left and spawns its own.
        let second = try makeShell(checkout)
        defer { second.close() }
        #expect(try second.run("echo again").stdout.text == "again\n")
        #expect(try second.withRunningJail { process, _ in process.pid } != prestarted.pid)
    }

    @Test func aHelperNobodyTakesEndsWhenAbandoned() throws {
        let slot = PrestartedShellHelper.Slot()
        let path = try JailConfiguration.locateHelper()
        PrestartedShellHelper.start(path: path, into: slot)
        // Asked for another helper binary: the prestarted one is ended, not handed over.
        #expect(PrestartedShellHelper.take(path: path + "-other", from: slot) == nil)
        #expect(PrestartedShellHelper.take(path: path, from: slot) == nil)

        PrestartedShellHelper.start(path: path, into: slot)
        let helper = try #require(PrestartedShellHelper.take(path: path, from: slot))
        #expect(kill(helper.pid, 0) == 0)
        helper.abandon()  // its specification pipe closes empty: it exits and is reaped
        #expect(kill(helper.pid, 0) == -1 && errno == ESRCH)
    }
}
