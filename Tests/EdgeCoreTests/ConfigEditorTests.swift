import EdgeCore
import EdgeTestSupport
import Foundation
import Testing

@Suite struct ConfigEditorTests {
    let text = """
        # site config
        gateway: {id: gw-1, site: "Test Pad", tenant: acmeoil}   # inline
        uplink:
          endpoint: https://acmeoil.wellpulse.io/api/v1/edge/batches
          token: {credential: edged-token}
          batch:
            maxAge: 60s    # keep
        storage: {path: /var/lib/edged/buffer.db}
        buses:
          - {name: line1, type: rtu, device: /dev/ttyS1, baud: 9600}
        devices:
          - name: well-1
            bus: line1
            unit: 1
            template: gauge
            poll: 5s
        """

    @Test func changesOnlyTheValueAndKeepsComments() throws {
        let out = try ConfigEditor.set("uplink.batch.maxAge", to: "30s", in: text)
        #expect(out.contains("    maxAge: 30s    # keep"))
        #expect(out.replacingOccurrences(of: "maxAge: 30s", with: "maxAge: 60s") == text)
        let byName = try ConfigEditor.set("devices.well-1.poll", to: "15s", in: text)
        #expect(byName.contains("    poll: 15s"))
        let byIndex = try ConfigEditor.set("buses[0].baud", to: "19200", in: text)
        #expect(byIndex.contains("device: /dev/ttyS1, baud: 19200}"))
        let quoted = try ConfigEditor.set("gateway.site", to: "Pecos 17: Pad A", in: text)
        #expect(quoted.contains("site: \"Pecos 17: Pad A\", tenant"))
    }

    @Test func explainsWhatCannotBeSet() {
        #expect(throws: ConfigEditor.EditError.self) {
            try ConfigEditor.set("uplink.batch.maxAgee", to: "1s", in: text)
        }
        do { _ = try ConfigEditor.set("devices.well-9.poll", to: "1s", in: text) } catch {
            #expect(error.description == "devices.well-9: no list item named 'well-9' (items: well-1)")
        }
        do { _ = try ConfigEditor.set("uplink.batch", to: "1s", in: text) } catch {
            #expect(error.description.contains("is a section or a list"))
        }
        do { _ = try ConfigEditor.set("uplink.batch.maxRecords", to: "10", in: text) } catch {
            #expect(error.description.contains("not set in this file"))
        }
    }
}
