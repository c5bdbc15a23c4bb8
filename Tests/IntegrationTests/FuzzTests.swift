import Foundation
import Testing

/// `make fuzz`, smaller: 500 hostile spool files next to 100 valid records, then 500 hostile webhook
/// and API requests against the running daemon, then 100 hostile messages on the bounce pipe
/// (scripts/fuzz.py checks and reports).
@Suite struct FuzzTests {
    @Test func hostileInputCannotStopRelance() async throws {
        let sandbox = try Sandbox()
        let fuzz = try Child(
            "/usr/bin/env",
            [
                "python3", Package.root + "/scripts/fuzz.py", "--relance", Package.relance, "--templates", Package.templates, "--hostile", "500", "--valid",
                "100", "--requests", "500", "--bounces", "100", "--fixtures", Package.root + "/Tests/Fixtures/bounces", "--seed", "7", "--work",
                sandbox.root + "/fuzz",
            ], directory: sandbox.root)
        let status = try await fuzz.wait(timeout: .seconds(300))
        #expect(status == 0, "\(fuzz.stdout)\(fuzz.stderr.suffix(3000))")
        let report = fuzz.stdout.split(separator: "\n").first { $0.hasPrefix("fuzz:") }
        #expect(report?.contains(" 5xx=0 ") == true && report?.contains(" forged-accepted=0 ") == true && report?.contains(" canary-leaks=0 ") == true
                && report?.contains(#" bounce-exits={"0":100} "#) == true)
        if let report { print(report) }
    }
}
