import EdgeCtlCommands
import EdgedDaemon

// One binary, two roles: the package installs /usr/bin/edgectl as a link to edged, so the Swift runtime,
// Foundation and ICU are on disk once instead of twice. Invoked under the name edgectl, edged is edgectl.
if CommandLine.arguments.first?.split(separator: "/").last == "edgectl" {
    EdgeCtl.main()
} else {
    await EdgedCommand.runAsProcess()
}
