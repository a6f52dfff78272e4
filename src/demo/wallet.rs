//! What the demo's wallets and node keys do, as a browser wallet or a node would:
//! `personal_sign` for sign-in and node proofs, EIP-712 for permits and consent, and
//! transactions that are sent, then waited for until mined.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, TxHash};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::api::{Api, text};
use super::error::{Failure, Result};
use super::report::Report;

/// How long a transaction may take to be mined before the step fails.
const MINING_TIMEOUT: Duration = Duration::from_secs(60);

/// `personal_sign` of `message`, 0x-hex `r || s || v`.
pub fn personal_sign(wallet: &PrivateKeySigner, message: &str) -> Result<String> {
    Ok(hex_signature(&wallet.sign_message_sync(message.as_bytes())?))
}

/// A signature of a 32-byte digest (EIP-712 messages), 0x-hex `r || s || v`.
pub fn sign_digest(wallet: &PrivateKeySigner, digest: &B256) -> Result<String> {
    Ok(hex_signature(&wallet.sign_hash_sync(digest)?))
}

fn hex_signature(signature: &alloy::primitives::Signature) -> String {
    format!("0x{}", hex::encode(signature.as_bytes()))
}

/// Signs in with Sign-In with Ethereum: asks for a nonce, composes the EIP-4361 message the
/// API's challenge describes (its domain, URI and chain), signs it and trades it for a
/// session. Returns the access token.
pub async fn sign_in(api: &Api, wallet: &PrivateKeySigner) -> Result<String> {
    sign_in_with(api, wallet, None).await
}

/// [`sign_in`], presenting a referral code or link, or an affiliate code, as a first
/// sign-in may.
pub async fn sign_in_with(api: &Api, wallet: &PrivateKeySigner, referral: Option<&str>) -> Result<String> {
    let challenge = api.get("/v1/auth/nonce", None).await?;
    let message = siwe_message(wallet.address(), &challenge)?;
    let mut body = json!({ "message": message, "signature": personal_sign(wallet, &message)? });
    if let Some(referral) = referral {
        body["referral"] = json!(referral);
    }
    let session = api.post("/v1/auth/siwe", None, &body).await?;
    Ok(text(&session, "/accessToken")?.to_owned())
}

fn siwe_message(address: Address, challenge: &Value) -> Result<String> {
    let chain_id = challenge["chainId"]
        .as_u64()
        .ok_or_else(|| Failure::mismatch("sign-in challenge", "a chainId", challenge))?;
    let issued_at = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .map_err(|e| Failure::Setup(e.to_string()))?;
    Ok(format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\n\
         Sign in to the adescrow demo.\n\n\
         URI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {issued_at}",
        domain = text(challenge, "/domain")?,
        address = address.to_checksum(None),
        uri = text(challenge, "/uri")?,
        nonce = text(challenge, "/nonce")?,
    ))
}

/// The chain as the demo's wallets see it.
#[derive(Debug, Clone)]
pub struct Chain {
    rpc_url: Url,
    /// For reads; transactions go through [`Chain::wallet`].
    pub reader: DynProvider,
}

impl Chain {
    pub fn new(rpc_url: Url) -> Self {
        let reader = ProviderBuilder::new().connect_http(rpc_url.clone()).erased();
        Self { rpc_url, reader }
    }

    /// A provider that signs and sends with `wallet` (nonces, gas and fees filled in).
    pub fn wallet(&self, wallet: &PrivateKeySigner) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(wallet.clone()))
            .connect_http(self.rpc_url.clone())
            .erased()
    }

    /// The latest block's timestamp: the chain's clock, which on a devnet can run ahead of
    /// the wall clock (after `anvil_increaseTime`) or behind it (no block for a while).
    pub async fn time(&self) -> Result<u64> {
        let block = self
            .reader
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .ok_or_else(|| Failure::Setup("the RPC has no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// The clock to sign deadlines and expiries against: the later of chain and wall time,
    /// so that they hold for the API (wall clock) and the contracts (block time) alike.
    pub async fn deadline_base(&self) -> Result<u64> {
        let wall = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        Ok(self.time().await?.max(wall))
    }
}

/// Waits for a sent transaction to be mined and checks that it succeeded.
pub async fn confirm(
    report: &mut Report<'_>,
    what: &'static str,
    pending: PendingTransactionBuilder<alloy::network::Ethereum>,
) -> Result<TransactionReceipt> {
    let tx: TxHash = *pending.tx_hash();
    report.info(format_args!("{what}: sent {tx}, waiting for it to be mined"));
    let receipt = pending.with_timeout(Some(MINING_TIMEOUT)).get_receipt().await?;
    if !receipt.status() {
        return Err(Failure::Reverted { what, tx });
    }
    report.ok(format_args!(
        "{what} mined in block {}, gas used {}",
        receipt.block_number.unwrap_or_default(),
        receipt.gas_used
    ));
    Ok(receipt)
}
