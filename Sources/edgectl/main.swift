import EdgeCtlCommands

// edgectl on its own, for development and the tests; the package installs edgectl as a link to edged (which
// runs EdgeCtl when invoked under that name).
EdgeCtl.main()
