public enum EdgeCoreVersion { public static let string = "0.1.0" }
