import Foundation
import RelanceCore
import RelanceTemplates

/// What would go out for one delivery: the composed email or the SMS text.
public enum OutgoingMessage: Sendable {
    case email(from: String, to: String, data: Data)
    case sms(from: String, to: String, text: String)

    public var recipient: String {
        switch self {
        case .email(_, let to, _), .sms(_, let to, _): return to
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

    public init(templates: TemplateSet, settings: ContextSettings, from: Mailbox, replyTo: Mailbox?, smsSender: String) {
        self.templates = templates
        self.settings = settings
        self.from = from
        self.replyTo = replyTo
        self.smsSender = smsSender
    }

    /// Blocking (reads attachments): run off the cooperative pool.
    public func build(_ reminder: Reminder, channel: Channel, now: Date) throws -> OutgoingMessage {
        switch channel {
        case .email:
            guard let address = reminder.debtor.email else { throw BuildError(description: "the debtor has no email address") }
            let rendered: RenderedEmail
            do { rendered = try templates.renderEmail(reminder, settings: settings, now: now) } catch {
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
                extraHeaders: [("X-Relance-Reminder", reminder.id), ("Auto-Submitted", "auto-generated")])
            // "=_" cannot occur in quoted-printable or base64 content, so the boundary never collides.
            let boundarySeed = UUID().uuidString.lowercased()
            do {
                return .email(from: from.address, to: address, data: try MIME.compose(message, boundarySeed: boundarySeed))
            } catch {
                throw BuildError(description: "cannot compose the message: \(error)")
            }
        case .sms:
            guard let phone = reminder.debtor.phone else { throw BuildError(description: "the debtor has no phone number") }
            let rendered: RenderedSMS
            do { rendered = try templates.renderSMS(reminder, settings: settings, now: now) } catch {
                throw BuildError(description: "template error: \(error)")
            }
            return .sms(from: smsSender, to: phone, text: rendered.text)
        }
    }
}
