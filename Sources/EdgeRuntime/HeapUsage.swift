import CEdgeShim

/// The C heap as glibc's allocator sees it, over all its arenas: what live allocations use, and what the
/// allocator holds (live plus freed chunks it keeps for reuse). Reported by `edgectl status` so a growing
/// footprint can be told apart: a leak grows `inUse`; fragmentation only `held`.
public struct HeapUsage: Sendable, Equatable {
    public var inUseBytes: Int64
    public var heldBytes: Int64

    public static func now() -> HeapUsage {
        var inUse: UInt64 = 0, held: UInt64 = 0
        edge_heap_usage(&inUse, &held)
        return HeapUsage(inUseBytes: Int64(clamping: inUse), heldBytes: Int64(clamping: held))
    }

    /// Makes blocks of 128 KiB and more (a batch's records, its JSON and gzip buffers) their own mappings,
    /// given back to the kernel when freed. By default glibc raises this threshold each time such a block
    /// is freed (up to 32 MiB), after which every upload round's buffers come from the arenas of whichever
    /// threads ran it and stay resident as free chunks for the life of the process.
    @discardableResult public static func mapLargeBlocks(from bytes: Int = 128 << 10) -> Bool {
        edge_heap_map_large_blocks(bytes) == 1
    }
}
