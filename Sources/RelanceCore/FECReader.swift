/// The French *Fichier des Écritures Comptables* (article A47 A-1 of the LPF): 18 columns, tab or
/// `|` separated, a header line, decimal commas, `yyyyMMdd` dates. Only lines on customer
/// accounts matter here (DESIGN.md "Receivables and the dunning plan"):
/// - a debit is an invoice: number `PieceRef` (else `EcritureNum`), debtor `CompAuxNum`, issued on
///   `PieceDate` (else `EcritureDate`), its due date from the debtor's terms;
/// - a credit is a credit note in a sales journal, a payment elsewhere;
/// - lines sharing a lettering code (`EcritureLet`) settle each other: a lettered credit is
///   allocated to that code's invoices, oldest first; what it leaves, and an unlettered credit,
///   settles the debtor's oldest items.
public struct FECReader: Sendable {
    public static let columns = [
        "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate",
        "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise",
    ]

    public var accounts: [String]
    public var salesJournals: [String]
    /// The currency of the amounts (the company's accounting currency).
    public var currency: String

    public init(accounts: [String] = ["411"], salesJournals: [String] = ["VE", "VT"], currency: String = "EUR") {
        self.accounts = accounts
        self.salesJournals = salesJournals
        self.currency = currency
    }

    /// A customer line of the file.
    struct Entry {
        var line: Int
        var journal: String
        var number: String
        var date: CivilDate
        var debtor: String
        var piece: String
        var pieceDate: CivilDate?
        var debit: Int64
        var credit: Int64
        var lettering: String
    }

    /// The records of a FEC, each with its line; a malformed line is a failure naming its column.
    public func records(_ bytes: [UInt8]) -> [(line: Int, value: Result<ReceivableRecord, RecordIssues>)] {
        var text = bytes
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text.removeFirst(3) }
        guard let decoded = String(validating: text, as: UTF8.self) else {
            return [
                (1, .failure(RecordIssues([FieldIssue(field: "", reason: "invalid UTF-8 (convert an ISO 8859-15 FEC first: iconv -f ISO-8859-15 -t UTF-8)")])))
            ]
        }
        // "\r\n" is one Character: split on every line break, keeping empty lines for the numbering.
        let lines = decoded.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        guard let header = lines.first else { return [] }
        let separator: Character = header.contains("\t") ? "\t" : "|"
        let names = header.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard names.count >= 18, Array(names.prefix(18)).map({ $0.lowercased() }) == Self.columns.map({ $0.lowercased() }) else {
            return [
                (
                    1,
                    .failure(RecordIssues([FieldIssue(field: "", reason: "not a FEC header: expected the 18 columns \(Self.columns.joined(separator: ", "))")]))
                )
            ]
        }
        var out: [(line: Int, value: Result<ReceivableRecord, RecordIssues>)] = []
        var entries: [Entry] = []
        for (offset, raw) in lines.enumerated().dropFirst() where !raw.allSatisfy({ $0 == " " || $0 == "\t" }) {
            let lineNumber = offset + 1
            let cells = raw.split(separator: separator, omittingEmptySubsequences: false).map { String($0).trimmingWhitespace() }
            guard cells.count == names.count else {
                out.append((lineNumber, .failure(RecordIssues([FieldIssue(field: "", reason: "\(cells.count) columns, the header has \(names.count)")]))))
                continue
            }
            guard accounts.contains(where: { cells[4].hasPrefix($0) }) else { continue }
            var issues: [FieldIssue] = []
            let date = Self.date(cells[3])
            if date == nil { issues.append(FieldIssue(field: "EcritureDate", reason: "'\(cells[3])' is not a date yyyyMMdd")) }
            let pieceDate = cells[9].isEmpty ? nil : Self.date(cells[9])
            if !cells[9].isEmpty && pieceDate == nil { issues.append(FieldIssue(field: "PieceDate", reason: "'\(cells[9])' is not a date yyyyMMdd")) }
            let debit = Self.amount(cells[11], currency: currency)
            let credit = Self.amount(cells[12], currency: currency)
            if debit == nil { issues.append(FieldIssue(field: "Debit", reason: "'\(cells[11])' is not an amount such as 1234,50")) }
            if credit == nil { issues.append(FieldIssue(field: "Credit", reason: "'\(cells[12])' is not an amount such as 1234,50")) }
            if cells[6].isEmpty { issues.append(FieldIssue(field: "CompAuxNum", reason: "a customer line needs its auxiliary account (the debtor)")) }
            if let debit, let credit, (debit > 0) == (credit > 0) {
                issues.append(FieldIssue(field: "Debit", reason: "exactly one of Debit and Credit must be above zero"))
            }
            if let problem = TextRules.problem(cells[6], maxLength: 128) { issues.append(FieldIssue(field: "CompAuxNum", reason: problem)) }
            if let problem = TextRules.problem(cells[8], maxLength: 64) { issues.append(FieldIssue(field: "PieceRef", reason: problem)) }
            guard issues.isEmpty, let date, let debit, let credit else {
                out.append((lineNumber, .failure(RecordIssues(issues))))
                continue
            }
            entries.append(
                Entry(
                    line: lineNumber, journal: cells[0], number: cells[2], date: date, debtor: cells[6], piece: cells[8].isEmpty ? cells[2] : cells[8],
                    pieceDate: pieceDate, debit: debit, credit: credit, lettering: cells[13]))
        }

        // Invoices: one per debtor and number (the debits of one piece add up).
        var invoices: [String: (line: Int, debtor: String, issued: CivilDate, amount: Int64, lettering: String)] = [:]
        var order: [String] = []
        for e in entries where e.debit > 0 {
            if var existing = invoices[e.piece] {
                existing.amount += e.debit
                invoices[e.piece] = existing
            } else {
                invoices[e.piece] = (e.line, e.debtor, e.pieceDate ?? e.date, e.debit, e.lettering)
                order.append(e.piece)
            }
        }
        for number in order {
            guard let inv = invoices[number] else { continue }
            out.append(
                (
                    inv.line,
                    .success(
                        .invoice(
                            ParsedInvoice(
                                number: number, debtor: inv.debtor, issuedOn: inv.issued, dueOn: nil, amount: inv.amount, currency: currency, instalments: [],
                                paymentURL: nil, document: nil)))
                ))
        }
        // Credits: allocated to their lettering code's invoices, oldest first.
        var left: [String: Int64] = invoices.mapValues(\.amount)
        let byCode = Dictionary(grouping: order.filter { !(invoices[$0]?.lettering.isEmpty ?? true) }, by: { invoices[$0]?.lettering ?? "" })
        for e in entries where e.credit > 0 {
            let isCreditNote = salesJournals.contains(e.journal)
            let id = "\(e.journal)-\(e.number)-\(e.debtor)"
            var remaining = e.credit
            var part = 0
            let targets =
                e.lettering.isEmpty
                ? []
                : (byCode[e.lettering] ?? []).filter { invoices[$0]?.debtor == e.debtor }
                    .sorted { (invoices[$0]?.issued ?? e.date, $0) < (invoices[$1]?.issued ?? e.date, $1) }
            for number in targets where remaining > 0 {
                let take = min(remaining, left[number] ?? 0)
                guard take > 0 else { continue }
                left[number, default: 0] -= take
                remaining -= take
                part += 1
                let partID = "\(id)-\(part)"
                if isCreditNote {
                    out.append(
                        (
                            e.line,
                            .success(.creditNote(id: partID, invoice: number, amount: MinorAmount(units: take, currency: currency).text, issuedOn: e.date))
                        ))
                } else {
                    out.append((e.line, .success(payment(partID, e, amount: take, invoice: number))))
                }
            }
            if remaining > 0 {
                // Unlettered, or more than its invoices: the debtor's credit, settling the oldest items.
                let restID = part == 0 ? id : "\(id)-rest"
                out.append((e.line, .success(payment(restID, e, amount: remaining, invoice: nil))))
            }
        }
        return out.sorted { $0.line < $1.line }
    }

    /// A payment record from a credit line (its part allocated to `invoice`, or unallocated).
    func payment(_ id: String, _ e: Entry, amount: Int64, invoice: String?) -> ReceivableRecord {
        .movement(key: "payment:\(id)", debtor: e.debtor, .payment(id: id, amount: amount, currency: currency, paidOn: e.date, invoice: invoice))
    }

    /// `yyyyMMdd`.
    static func date(_ text: String) -> CivilDate? {
        let u = Array(text.utf8)
        guard u.count == 8, u.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return CivilDate(
            String(decoding: u[0..<4], as: UTF8.self) + "-" + String(decoding: u[4..<6], as: UTF8.self) + "-" + String(decoding: u[6..<8], as: UTF8.self))
    }

    /// `1234,50` (or `1234.50`; spaces as thousands separators allowed); empty is zero.
    static func amount(_ text: String, currency: String) -> Int64? {
        let cleaned = String(text.filter { $0 != " " && $0 != "\u{00A0}" && $0 != "\u{202F}" }.map { $0 == "," ? "." : $0 })
        if cleaned.isEmpty { return 0 }
        if let value = MinorAmount(cleaned, currency: currency) { return value.units }
        // "0" / "0.00" are zero; MinorAmount takes them too. Anything else is malformed.
        return nil
    }
}
