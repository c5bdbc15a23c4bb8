import Foundation

/// The sibling `NAME.error.json` of a quarantined file.
public struct ErrorReport: Codable, Sendable {
    public var file: String
    public var queue: String
    public var failedAt: String
    /// Good records of the file that were taken all the same.
    public var ingested: Int
    public var errors: [LineError]

    enum CodingKeys: String, CodingKey {
        case file, queue
        case failedAt = "failed_at"
        case ingested, errors
    }

    /// Moves `path` to `failed/` under a free name, with this report beside it as
    /// `NAME.error.json` (written durably first). Blocking.
    func quarantine(_ path: String, as name: String, in layout: SpoolLayout) throws {
        let final = SpoolLayout.freeName(name, in: layout.failed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let reportPath = layout.failed + "/" + final + ".error.json"
        try? FileManager.default.removeItem(atPath: reportPath + ".tmp")
        try FileIO.writeDurably(try encoder.encode(self), to: reportPath + ".tmp")
        try FileIO.rename(reportPath + ".tmp", reportPath)
        try FileIO.rename(path, layout.failed + "/" + final)
    }
}
