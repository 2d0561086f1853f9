import CEdgeSystem

/// The C heap as glibc's allocator sees it, over all its arenas: what live allocations use, and what the
/// allocator holds (live plus freed chunks it keeps for reuse). Reported by `edgectl status` so a growing
/// footprint can be told apart: a leak grows `inUse`; fragmentation only `held`.
public struct HeapUsage: Sendable, Equatable {
    public var inUseBytes: Int64
    public var heldBytes: Int64
    /// How many arenas glibc has made (one per thread that met contention, up to `limitArenas`).
    public var arenas: Int

    public static func now() -> HeapUsage {
        var inUse: UInt64 = 0, held: UInt64 = 0
        edge_heap_usage(&inUse, &held)
        return HeapUsage(
            inUseBytes: Int64(clamping: inUse), heldBytes: Int64(clamping: held), arenas: Int(edge_heap_arena_count()))
    }

    /// Makes blocks of 128 KiB and more (a batch's records, its JSON and gzip buffers) their own mappings,
    /// given back to the kernel when freed. By default glibc raises this threshold each time such a block
    /// is freed (up to 32 MiB), after which every upload round's buffers come from the arenas of whichever
    /// threads ran it and stay resident as free chunks for the life of the process.
    @discardableResult public static func mapLargeBlocks(from bytes: Int = 128 << 10) -> Bool {
        edge_heap_map_large_blocks(bytes) == 1
    }

    /// Caps glibc's malloc arenas. By default each thread that meets contention gets an arena of its own
    /// (up to 8 per core), and each keeps its free chunks and top pad resident: edged's bus, writer and
    /// uplink threads held seven of them polling the example pad ×10. Two arenas measured 1.5 MiB less
    /// resident memory there (docs/BENCHMARKS.md); edged's threads spend their time in I/O, not in malloc.
    /// Takes effect for threads that have not allocated yet, so it is called first thing.
    @discardableResult public static func limitArenas(to count: Int = 2) -> Bool {
        edge_heap_limit_arenas(Int32(count)) == 1
    }
}
