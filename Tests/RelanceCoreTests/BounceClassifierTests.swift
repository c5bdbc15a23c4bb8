import Foundation
import Testing

@testable import RelanceCore

/// The bounce corpus (Tests/Fixtures/bounces): messages shaped like what Postfix, Exim, qmail,
/// Exchange, Microsoft 365 and Gmail send back, and what must never count as a bounce
/// (auto-replies, read receipts, challenge-responses, success reports, a debtor's reply).
/// `expected.json` says, for each, every bounced recipient with its kind and status, and the
/// references to the delivery, or why it is not a bounce.
@Suite struct BounceClassifierTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/bounces")

    struct Expected: Decodable {
        var bounce: [[String]]?
        var references: [String]?
        var not: String?
    }

    static func corpus() throws -> [String: Expected] {
        try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: directory.appendingPathComponent("expected.json")))
    }

    @Test func everyMessageOfTheCorpusIsClassifiedRight() throws {
        let corpus = try Self.corpus()
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".eml") }.sorted()
        #expect(Set(files) == Set(corpus.keys), "every fixture has its expectation")
        for file in files {
            let verdict = BounceClassifier.classify(try Data(contentsOf: Self.directory.appendingPathComponent(file)))
            let expected = try #require(corpus[file])
            if let not = expected.not {
                #expect(verdict == .notABounce(reason: BounceClassifier.NotABounce(rawValue: not)!), "\(file): \(verdict)")
            } else {
                guard case .bounce(let recipients, let references) = verdict else {
                    Issue.record("\(file): not read as a bounce: \(verdict)")
                    continue
                }
                #expect(recipients.map { [$0.address, $0.kind.rawValue, $0.status ?? ""] } == expected.bounce, "\(file)")
                #expect(references == (expected.references ?? []), "\(file)")
            }
        }
    }

    @Test func theCorpusCoversEachShape() throws {
        let corpus = try Self.corpus()
        #expect(corpus.count >= 40)
        let bounces = corpus.values.compactMap(\.bounce).flatMap { $0 }
        #expect(bounces.contains { $0[1] == "hard" } && bounces.contains { $0[1] == "soft" })
        #expect(corpus.values.filter { $0.not == "auto_reply" }.count >= 5)
        #expect(corpus.values.contains { $0.not == "read_receipt" } && corpus.values.contains { $0.not == "challenge" })
    }

    @Test func aFourClassFailureIsSoftAndAFailureWithoutStatusIsHard() {
        let soft = BounceClassifier.deliveryStatus("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 4.2.2\n")
        #expect(soft.map(\.kind) == [.soft], "listmonk's mistake: a 4.x.x is not a hard bounce")
        let bare = BounceClassifier.deliveryStatus("Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822;<B@Example.org>\nAction: failed\n")
        #expect(bare.map(\.address) == ["b@example.org"] && bare.map(\.kind) == [.hard])
    }

    /// Every fixture cut short, with bytes flipped, lines doubled or boundaries removed, 200 ways
    /// each (a fixed seed): the classifier answers each one (no crash, no hang), and a mutated
    /// auto-reply or read receipt that keeps its marks is still never a bounce.
    @Test func mutatedFixturesAreAnsweredWithoutCrashing() throws {
        var generator = SplitMix(seed: 0x5EED_B0B5)
        let corpus = try Self.corpus()
        for (file, expected) in corpus.sorted(by: { $0.key < $1.key }) {
            let original = Array(try Data(contentsOf: Self.directory.appendingPathComponent(file)))
            for round in 0..<200 {
                var bytes = original
                switch round % 4 {
                case 0: bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count + 1))))
                case 1:
                    for _ in 0..<8 where !bytes.isEmpty { bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next()) }
                case 2:
                    let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
                    bytes = Array(lines.flatMap { generator.next() % 5 == 0 ? [$0, $0] : [$0] }.joined(separator: "\r\n").utf8)
                default: bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "--", with: "").utf8)
                }
                let verdict = BounceClassifier.classify(Data(bytes))
                if expected.not == "read_receipt" || expected.not == "auto_reply", round % 4 == 3, case .bounce = verdict {
                    Issue.record("\(file), round \(round): a mutated \(expected.not ?? "") counted as a bounce")
                }
            }
        }
    }

    @Test func hostileInputNeitherCrashesNorCounts() {
        for text in ["", "\r\n\r\n", String(repeating: "Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\n", count: 1000),
                     "From: MAILER-DAEMON@x\nSubject: Undelivered\n\n" + String(repeating: "<", count: 100_000)] {
            let verdict = BounceClassifier.classify(Data(text.utf8))
            if case .bounce = verdict { Issue.record("counted as a bounce: \(text.prefix(80))") }
        }
        #expect(BounceClassifier.classify(Data([0xFF, 0xFE, 0x00, 0x0D, 0x0A])) == .notABounce(reason: .unrecognised))
    }
}

