// The parts of the contracts' ABIs the pages call, as literal types so that viem checks
// every argument at compile time (the full artifacts would cost bundle size for nothing).

const bytes32 = 'bytes32';

export const erc20Abi = [
  { type: 'function', name: 'balanceOf', stateMutability: 'view', inputs: [{ name: 'account', type: 'address' }], outputs: [{ type: 'uint256' }] },
  { type: 'function', name: 'decimals', stateMutability: 'view', inputs: [], outputs: [{ type: 'uint8' }] },
  { type: 'function', name: 'symbol', stateMutability: 'view', inputs: [], outputs: [{ type: 'string' }] },
  { type: 'function', name: 'name', stateMutability: 'view', inputs: [], outputs: [{ type: 'string' }] },
  { type: 'function', name: 'nonces', stateMutability: 'view', inputs: [{ name: 'owner', type: 'address' }], outputs: [{ type: 'uint256' }] },
  {
    type: 'function', name: 'allowance', stateMutability: 'view',
    inputs: [{ name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }], outputs: [{ type: 'uint256' }],
  },
  {
    type: 'function', name: 'approve', stateMutability: 'nonpayable',
    inputs: [{ name: 'spender', type: 'address' }, { name: 'amount', type: 'uint256' }], outputs: [{ type: 'bool' }],
  },
  {
    type: 'function', name: 'eip712Domain', stateMutability: 'view', inputs: [],
    outputs: [
      { name: 'fields', type: 'bytes1' }, { name: 'name', type: 'string' }, { name: 'version', type: 'string' },
      { name: 'chainId', type: 'uint256' }, { name: 'verifyingContract', type: 'address' },
      { name: 'salt', type: 'bytes32' }, { name: 'extensions', type: 'uint256[]' },
    ],
  },
] as const;

export const escrowAbi = [
  {
    type: 'function', name: 'openCampaign', stateMutability: 'nonpayable',
    inputs: [{ name: 'campaignId', type: bytes32 }, { name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' }, { name: 'end', type: 'uint40' }],
    outputs: [],
  },
  {
    type: 'function', name: 'openCampaignWithPermit', stateMutability: 'nonpayable',
    inputs: [
      { name: 'campaignId', type: bytes32 }, { name: 'token', type: 'address' }, { name: 'amount', type: 'uint256' },
      { name: 'end', type: 'uint40' }, { name: 'deadline', type: 'uint256' }, { name: 'v', type: 'uint8' },
      { name: 'r', type: bytes32 }, { name: 's', type: bytes32 },
    ],
    outputs: [],
  },
  {
    type: 'function', name: 'fund', stateMutability: 'nonpayable',
    inputs: [{ name: 'campaignId', type: bytes32 }, { name: 'amount', type: 'uint256' }], outputs: [],
  },
  { type: 'function', name: 'closeCampaign', stateMutability: 'nonpayable', inputs: [{ name: 'campaignId', type: bytes32 }], outputs: [] },
  { type: 'function', name: 'withdraw', stateMutability: 'nonpayable', inputs: [{ name: 'campaignId', type: bytes32 }], outputs: [{ name: 'amount', type: 'uint256' }] },
  {
    type: 'function', name: 'claim', stateMutability: 'nonpayable',
    inputs: [
      { name: 'account', type: 'address' }, { name: 'token', type: 'address' },
      { name: 'indexAndAmount', type: 'uint256' }, { name: 'proof', type: 'bytes32[]' },
    ],
    outputs: [{ name: 'amount', type: 'uint256' }],
  },
  {
    type: 'function', name: 'campaign', stateMutability: 'view', inputs: [{ name: 'campaignId', type: bytes32 }],
    outputs: [{
      type: 'tuple',
      components: [
        { name: 'token', type: 'address' }, { name: 'end', type: 'uint40' },
        { name: 'remaining', type: 'uint256' }, { name: 'advertiser', type: 'address' },
      ],
    }],
  },
] as const;

export const consentAbi = [
  { type: 'function', name: 'nonces', stateMutability: 'view', inputs: [{ name: 'owner', type: 'address' }], outputs: [{ type: 'uint256' }] },
  {
    type: 'function', name: 'consentExpiry', stateMutability: 'view',
    inputs: [{ name: 'user', type: 'address' }, { name: 'scope', type: bytes32 }], outputs: [{ type: 'uint64' }],
  },
] as const;

/** EIP-712 types of the consent registry ("adescrow consent", version 1). */
export const consentTypes = {
  ConsentGrant: [
    { name: 'user', type: 'address' }, { name: 'scope', type: 'bytes32' }, { name: 'expiry', type: 'uint64' },
    { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' },
  ],
  ConsentRevocation: [
    { name: 'user', type: 'address' }, { name: 'scope', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' },
  ],
} as const;

/** EIP-2612's permit type. */
export const permitTypes = {
  Permit: [
    { name: 'owner', type: 'address' }, { name: 'spender', type: 'address' }, { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' }, { name: 'deadline', type: 'uint256' },
  ],
} as const;
