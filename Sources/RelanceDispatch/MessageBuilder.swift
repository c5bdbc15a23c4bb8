import Foundation
import Synchronization
import RelanceBounces
import RelanceCore
import RelanceTemplates

/// What would go out for one delivery: the composed email or the SMS text.
public enum OutgoingMessage: Sendable {
    case email(from: String, to: String, data: Data)
    case sms(SMSMessage)

    public var recipient: String {
        switch self {
        case .email(_, let to, _): return to
        case .sms(let message): return message.to
        }
    }
}

/// A delivery that cannot be built: rendering failed, no recipient, an attachment vanished.
public struct BuildError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Renders and composes the message of one delivery.
public struct MessageBuilder: Sendable {
    public var templates: TemplateSet
    public var settings: ContextSettings
    public var from: Mailbox
    public var replyTo: Mailbox?
    public var smsSender: String
    /// `gsm7` transliterates to the GSM 03.38 alphabet; `auto` keeps the text and uses UCS-2 when needed.
    public var smsTransliterate: Bool
    public var smsMaxSegments: Int
    /// The VERP return path (`email.bounce`): each email's envelope sender names its delivery,
    /// and its `X-Relance-Delivery` header carries the same token. Nil: the envelope sender is `from`.
    public var verp: VERP?

    public init(
        templates: TemplateSet, settings: ContextSettings, from: Mailbox, replyTo: Mailbox?, smsSender: String, smsTransliterate: Bool = false,
        smsMaxSegments: Int = 3
    ) {
        self.smsTransliterate = smsTransliterate
        self.smsMaxSegments = smsMaxSegments
        self.templates = templates
        self.settings = settings
        self.from = from
        self.replyTo = replyTo
        self.smsSender = smsSender
    }

    /// Reads the reminder's attachments from disk when it has some (then run it off the cooperative
    /// pool); otherwise CPU only.
    /// `history`: in agency mode, the first letter about these debts (nil: this is the first).
    public func build(_ reminder: Reminder, channel: Channel, now: Date, history: LetterHistory? = nil) throws -> OutgoingMessage {
        switch channel {
        case .email:
            guard let address = reminder.debtor.email else { throw BuildError(description: "the debtor has no email address") }
            let rendered: RenderedEmail
            do { rendered = try templates.renderEmail(reminder, settings: settings, now: now, history: history) } catch {
                throw BuildError(description: "template error: \(error)")
            }
            var attachments: [MailAttachment] = []
            for path in reminder.attachments {
                guard let data = FileManager.default.contents(atPath: path) else { throw BuildError(description: "attachment \(path) can no longer be read") }
                attachments.append(MailAttachment(filename: (path as NSString).lastPathComponent, data: data))
            }
            let domain = EmailAddress.domain(of: from.address)
            let message = MailMessage(
                from: from, to: Mailbox(name: reminder.debtor.name, address: address), replyTo: replyTo, subject: rendered.subject, text: rendered.text,
                html: rendered.html, attachments: attachments, messageID: MIME.messageID(reminderID: reminder.id, channel: "email", domain: domain), date: now,
                extraHeaders: [("X-Relance-Reminder", reminder.id), ("Auto-Submitted", "auto-generated")]
                    + (verp.map { [(VERP.header, $0.token(reminderID: reminder.id))] } ?? []))
            // "=_" cannot occur in quoted-printable or base64 content, so the boundary never collides.
            let boundarySeed = BoundarySeed.next()
            do {
                let envelope = verp?.returnPath(reminderID: reminder.id) ?? from.address
                return .email(from: envelope, to: address, data: try MIME.compose(message, boundarySeed: boundarySeed))
            } catch {
                throw BuildError(description: "cannot compose the message: \(error)")
            }
        case .sms:
            guard let phone = reminder.debtor.phone else { throw BuildError(description: "the debtor has no phone number") }
            if let problem = PhoneNumber.smsProblem(phone) { throw BuildError(description: problem) }
            let rendered: RenderedSMS
            do { rendered = try templates.renderSMS(reminder, settings: settings, now: now, history: history) } catch {
                throw BuildError(description: "template error: \(error)")
            }
            let text = try smsText(rendered.text)
            let message = SMSMessage(to: phone, from: smsSender, text: text, reference: Self.reference(reminder.id, channel: .sms))
            if message.analysis.segments > smsMaxSegments {
                throw BuildError(
                    description:
                        "the SMS renders as \(message.analysis.segments) segments (\(message.analysis)), over sms.max_segments (\(smsMaxSegments)); nothing was cut"
                )
            }
            return .sms(message)
        }
    }

    /// The final SMS text: no-break spaces (which fr-FR money formatting emits) become spaces in
    /// every mode; `gsm7` also transliterates what GSM-7 lacks (ê→e, ç→c, œ→oe, ’→').
    func smsText(_ text: String) throws -> String {
        let spaced = String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{00A0}" || $0 == "\u{202F}" ? " " : $0 }))
        guard smsTransliterate else { return spaced }
        switch GSMTransliterator.transliterate(spaced) {
        case .success(let gsm): return gsm
        case .failure(let failure): throw BuildError(description: "sms.encoding is gsm7 but \(failure)")
        }
    }

    /// Our reference for a delivery, at most 40 characters (Vonage's `client-ref` limit), stable.
    public static func reference(_ reminderID: String, channel: Channel) -> String {
        let key = "\(reminderID)/\(channel.rawValue)"
        if key.utf8.count <= 40 && key.allSatisfy(\.isASCII) { return key }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let prefix = String(String(reminderID.unicodeScalars.filter(\.isASCII).map(Character.init)).prefix(23))
        return "\(prefix)~\(String(hash, radix: 16))"
    }
}

/// The part of a message's MIME boundaries that makes them its own: a random prefix drawn once per
/// process and a counter. A boundary need not be secret, only absent from the parts (which "=_"
/// guarantees) and distinct between messages; a UUID per message cost a random draw each (1.4 % of
/// an email run).
enum BoundarySeed {
    private static let prefix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return prefix + "." + String(n, radix: 16)
    }
}
