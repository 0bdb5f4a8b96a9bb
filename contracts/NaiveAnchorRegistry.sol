// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title NaiveAnchorRegistry
/// @notice Benchmark baseline only, never deployed in production: one transaction per record
///         hash, the design civic-ledger's batched AnchorRegistry is measured against.
/// @dev Kept as fair as possible: the same AccessControl role check as AnchorRegistry (one cold
///      role lookup), one fresh storage slot per record (its block number, so the record can be
///      looked up and dated like a batch), a refusal to overwrite, and one event.
contract NaiveAnchorRegistry is AccessControl {
    /// @notice May call `store`.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    mapping(bytes32 recordHash => uint256 blockNumber) private _storedAt;

    /// @notice A record hash was stored in block `blockNumber`.
    event Stored(bytes32 indexed recordHash, uint256 blockNumber);

    /// @notice A zero hash is how `storedAt` says "not stored".
    error EmptyHash();
    /// @notice Each hash is stored once.
    error AlreadyStored(bytes32 recordHash);

    /// @param admin Holds DEFAULT_ADMIN_ROLE.
    /// @param anchorer Holds ANCHORER_ROLE.
    constructor(address admin, address anchorer) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @notice Stores one record hash with the current block number.
    function store(bytes32 recordHash) external onlyRole(ANCHORER_ROLE) {
        if (recordHash == bytes32(0)) revert EmptyHash();
        if (_storedAt[recordHash] != 0) revert AlreadyStored(recordHash);
        _storedAt[recordHash] = block.number;
        emit Stored(recordHash, block.number);
    }

    /// @notice The block in which `recordHash` was stored, or 0 when it was not.
    function storedAt(bytes32 recordHash) external view returns (uint256) {
        return _storedAt[recordHash];
    }
}
