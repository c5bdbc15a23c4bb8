import Foundation
import RelanceTransport
import Testing

@testable import RelanceDispatch

/// What `in_doubt: resend` decides for a delivery found in doubt, from the provider's answer.
@Suite struct InDoubtCheckTests {
    @Test func theProviderIsAskedWhereItCanBe() {
        let nobody = InDoubtCheck.decide(transport: "smtp", answer: nil)
        #expect(nobody == .resend(reason: "in doubt, resent (delivery.in_doubt: resend; smtp cannot be asked what it sent)"))
        let nothing = InDoubtCheck.decide(transport: "twilio", answer: .success([]))
        #expect(nothing == .resend(reason: "in doubt, resent: twilio sent nothing to the number since the attempt (delivery.in_doubt: resend)"))
        let found = InDoubtCheck.decide(
            transport: "brevo",
            answer: .success([FoundMessage(id: "m-1", status: .delivered("delivered"), at: ""), FoundMessage(id: "m-2", status: .pending("sent"), at: "")]))
        #expect(found == .sent(reason: "in doubt, not resent: brevo says it sent m-1, m-2 to the number since the attempt"))
        let down = InDoubtCheck.decide(transport: "vonage", answer: .failure(CurlError(code: 7, message: "Couldn't connect")))
        guard case .keep(let reason) = down else {
            Issue.record("a gateway that cannot be asked keeps the delivery in doubt: \(down)")
            return
        }
        #expect(reason.contains("vonage could not be asked") && reason.contains("left for relance resolve"))
    }
}
