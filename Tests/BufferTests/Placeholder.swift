import Testing
@Test func bufferPlaceholder() {}
