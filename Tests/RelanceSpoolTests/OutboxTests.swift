import Foundation
import RelanceCore
import Testing

@testable import RelanceSpool

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "relance-spool-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct OutboxTests {
    @Test func maildirDeliversIntoNewNeverTmp() async throws {
        let dir = temporaryDirectory() + "/mail"
        let outbox = try MaildirOutbox(directory: dir)
        let outcomes = await withTaskGroup(of: SendOutcome.self) { group in
            for i in 0..<20 { group.addTask { await outbox.send(message: Data("Subject: \(i)\r\n\r\nbody\r\n".utf8)) } }
            return await group.reduce(into: [SendOutcome]()) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { if case .sent = $0 { true } else { false } })
        let delivered = try FileManager.default.contentsOfDirectory(atPath: dir + "/new")
        #expect(delivered.count == 20)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp").isEmpty)
        let subjects = Set(try delivered.map { try String(contentsOfFile: dir + "/new/" + $0, encoding: .utf8).components(separatedBy: "\r\n")[0] })
        #expect(subjects.count == 20)
    }

    @Test func maildirWriteFailureIsTransient() async throws {
        let dir = temporaryDirectory() + "/mail"
        let outbox = try MaildirOutbox(directory: dir)
        try FileManager.default.removeItem(atPath: dir + "/tmp")
        let outcome = await outbox.send(message: Data("x".utf8))
        guard case .transient(_, let detail, _) = outcome else {
            Issue.record("expected a transient failure, got \(outcome)")
            return
        }
        #expect(detail.contains("outbox write failed"))
    }

    @Test func smsOutboxAppendsOneJSONLinePerMessage() async throws {
        let path = temporaryDirectory() + "/sms.jsonl"
        let outbox = try SMSOutbox(path: path)
        _ = await outbox.send(to: "+33612345678", from: "EXEMPLE", text: "Bonjour\nligne 2 €", reminderID: "R1")
        _ = await outbox.send(to: "+33798765432", from: "EXEMPLE", text: "Deux", reminderID: "R2")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONDecoder().decode(SMSOutbox.Line.self, from: Data(lines[0].utf8))
        #expect(first.to == "+33612345678")
        #expect(first.text == "Bonjour\nligne 2 €")
        #expect(first.reminderID == "R1")
    }
}

/// C calls whose failures used to be ignored (issue 10).
@Suite struct CheckedCallsTests {
    @Test func aDirectoryThatCannotBeSyncedIsAnError() {
        #expect(throws: FileIO.Failure.self) { try FileIO.syncDirectory(temporaryDirectory() + "/missing") }
        #expect(throws: FileIO.Failure.self) { try FileIO.rename(temporaryDirectory() + "/a", temporaryDirectory() + "/b") }
        #expect(throws: FileIO.Failure.self) { try FileIO.unlink(temporaryDirectory() + "/gone") }
    }

    @Test func aWatchThatCannotBeAddedIsReported() {
        let reported = ReportBox()
        let watcher = SpoolWatcher(directory: temporaryDirectory() + "/missing", onChange: {}, onError: { reported.add($0) })
        #expect(watcher == nil, "no silent watcher on nothing: the daemon falls back to its rescan and says so")
        #expect(reported.items.first?.contains("inotify_add_watch") == true)
    }
}

final class ReportBox: @unchecked Sendable {
    // @unchecked: written by the watcher's init on this thread, read after it returns.
    var items: [String] = []
    func add(_ item: String) { items.append(item) }
}
