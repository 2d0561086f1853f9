import EdgeCore
import Testing

/// What a support bundle must never carry: the token, bearer tokens, private keys, passwords in URLs.
@Suite struct SupportRedactionTests {
    @Test func secretsAreReplacedAndTheRestIsKept() {
        let text = """
            uplink:
              proxy: http://field:hunter2-pass@proxy.pad.local:3128
              token: {file: /etc/edged/token}   # tok-5f0c3a9e2b7d
            curl: > Authorization: Bearer tok-5f0c3a9e2b7d+/x=
            -----BEGIN EC PRIVATE KEY-----
            MHcCAQEEIBkg4nYvV3ZsyX
            -----END EC PRIVATE KEY-----
            -----BEGIN CERTIFICATE-----
            MIIBszCCAVmgAwIBAgIU
            -----END CERTIFICATE-----
            endpoint: https://acmeoil.wellpulse.io/api/v1/edge/batches
            """
        let out = SupportRedaction.redact(text, secrets: ["tok-5f0c3a9e2b7d", "short"])
        #expect(!out.contains("tok-5f0c3a9e2b7d"))
        #expect(!out.contains("hunter2-pass") && out.contains("http://field:[REDACTED]@proxy.pad.local:3128"))
        #expect(out.contains("Authorization: Bearer [REDACTED]") && !out.contains("+/x="))
        #expect(!out.contains("MHcCAQEEIBkg4nYvV3ZsyX"))
        #expect(out.contains("-----BEGIN EC PRIVATE KEY----- [REDACTED] -----END EC PRIVATE KEY-----"))
        // Certificates are public; ordinary URLs and short "secrets" (they would blank words) stay.
        #expect(out.contains("MIIBszCCAVmgAwIBAgIU"))
        #expect(out.contains("https://acmeoil.wellpulse.io/api/v1/edge/batches"))
        #expect(out.contains("token: {file: /etc/edged/token}"))
        // A key whose end is missing (a truncated paste) is cut from its start.
        #expect(!SupportRedaction.redact("-----BEGIN PRIVATE KEY-----\nABCDEF").contains("ABCDEF"))
    }
}
