import Foundation
import Yams

/// Read access to configuration files, so the loader stays free of I/O (tests pass their own).
public protocol ConfigFileAccess: Sendable {
    /// The file's text, or an error saying why it cannot be read.
    func readText(_ path: String) throws(ConfigFileError) -> String
    /// The file's permission bits, or nil when it does not exist.
    func permissions(_ path: String) -> UInt32?
}

/// Why a configuration file could not be read.
public struct ConfigFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "cannot read \(path): \(reason)" }
}

/// A configuration that passed validation, with the warnings found on the way.
public struct LoadedConfig: Sendable {
    public var config: EdgeConfig
    public var warnings: [ConfigDiagnostic]
    public var path: String
}

/// Reads, parses and validates a configuration and the template files it includes.
public struct ConfigLoader: Sendable {
    public static let defaultPath = "/etc/edged/edged.yaml"
    public let files: any ConfigFileAccess
    public init(files: any ConfigFileAccess) { self.files = files }

    public func load(path: String) -> Result<LoadedConfig, ConfigError> {
        let text: String
        do { text = try files.readText(path) } catch {
            return .failure(ConfigError(diagnostics: [ConfigDiagnostic(.error, at: nil, path: "", "\(error)")]))
        }
        return load(text: text, path: path)
    }

    /// Validates `text` as if it were the file at `path` (templates are still read relative to it).
    public func load(text: String, path: String) -> Result<LoadedConfig, ConfigError> {
        var parser = ConfigParser()
        parser.sources[path] = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let root = compose(text, file: path, log: &parser.r.log) else {
            return .failure(ConfigError(diagnostics: parser.r.log.items))
        }
        var draft = parser.parseDocument(root)
        let dir = (path as NSString).deletingLastPathComponent
        for include in parser.includes {
            let full = include.path.hasPrefix("/") || dir.isEmpty ? include.path : "\(dir)/\(include.path)"
            let templateText: String
            do { templateText = try files.readText(full) } catch {
                parser.r.log.error(
                    include.at.location, include.at.path, "cannot read template file '\(full)': \(error.reason)")
                draft.brokenInclude = true
                continue
            }
            parser.sources[full] = templateText.split(separator: "\n", omittingEmptySubsequences: false)
            guard let tRoot = compose(templateText, file: full, log: &parser.r.log) else {
                draft.brokenInclude = true; continue
            }
            if let (t, tags) = parser.template(tRoot, file: full) {
                draft.templates.append((t, tRoot))
                draft.tagNodes.append(tags)
            } else {
                draft.brokenInclude = true
            }
        }
        var validator = ConfigValidator(draft: draft, files: files, log: parser.r.log)
        let config = validator.validate()
        let diagnostics = validator.log.items.enumerated().sorted { a, b in
            Self.order(a.element, main: path, a.offset).lexicographicallyPrecedes(
                Self.order(b.element, main: path, b.offset))
        }.map(\.element)
        guard let config, !diagnostics.contains(where: { $0.severity == .error }) else {
            return .failure(ConfigError(diagnostics: diagnostics))
        }
        return .success(LoadedConfig(config: config, warnings: diagnostics, path: path))
    }

    private static func order(_ d: ConfigDiagnostic, main: String, _ seq: Int) -> [Int] {
        guard let l = d.location else { return [0, 0, 0, 0, seq] }
        return [1, l.file == main ? 0 : 1, l.line, l.column, seq]
    }

    private func compose(_ original: String, file: String, log: inout DiagnosticLog) -> YNode? {
        var text = original
        for _ in 0..<50 {
            do {
                guard let node = try Yams.compose(yaml: text) else {
                    log.error(SourceLocation(file: file, line: 1, column: 1), "", "the file is empty")
                    return nil
                }
                return YNode(node: node, path: "", file: file)
            } catch YamlError.duplicatedKeysInMapping(let keys, let context) {
                // Rename the repetition and compose again, so it is reported with its path and the rest is checked.
                guard let key = keys.first, let renamed = DuplicateKeys.rename(key, first: context.mark, in: text)
                else {
                    log.error(
                        SourceLocation(file: file, line: context.mark.line, column: context.mark.column), "",
                        "duplicate key '\(keys.first ?? "")' in one mapping")
                    return nil
                }
                text = renamed
            } catch {
                return composeError(error, text: text, file: file, log: &log)
            }
        }
        return nil
    }

    private func composeError(_ error: any Error, text: String, file: String, log: inout DiagnosticLog) -> YNode? {
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _)?, .parser(let context, let problem, let mark, _)?,
            .composer(let context, let problem, let mark, _)?:
            let ctx = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            log.error(
                SourceLocation(file: file, line: mark.line, column: mark.column), "", "YAML syntax: \(problem)\(ctx)")
        default:
            log.error(SourceLocation(file: file, line: 1, column: 1), "", "YAML: \(error)")
        }
        return nil
    }
}
