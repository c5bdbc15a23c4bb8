import Foundation
import RelanceCore
import RelanceStore
import Testing

/// The defects of issue 10 that show only through the binary: each test failed before its fix.
@Suite struct FoundDefectTests {
    /// A `not_before` with Arabic-Indic digits crashed `preview` (SIGILL, exit 132) and, in the
    /// daemon, left the file in `active/` to crash every start.
    @Test func poisonPillIsRefusedNotCrashed() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let poison = Records.reminder("P-1", extra: ["not_before": "2026-11-29T١٠:00:00Z"])
        let file = sandbox.root + "/poison.json"
        try JSONSerialization.data(withJSONObject: poison).write(to: URL(fileURLWithPath: file))

        let preview = try await sandbox.relance(["preview", file])
        #expect(preview.status == 2, "\(preview.stderr)")
        #expect(preview.stdout.contains("field not_before"))

        try sandbox.dropLines("poison.jsonl", [poison, Records.reminder("P-2")])
        let run = try await sandbox.relance(["serve", "--once"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(sandbox.files("failed") == ["poison.jsonl", "poison.jsonl.error.json"])
        #expect(sandbox.files("active/default").isEmpty)
        #expect(try await statuses(sandbox.ledger()) == ["P-2/email": "sent"])
    }
}
