using System.Security.Cryptography;

namespace DaprTrain.Coordination.Security;

/// <summary>
/// The coordinator's key for signing round decisions (issue 16), so that a decision can travel between peers over the
/// broker, where anyone may publish: a peer takes one from a peer only when this key signed it (<see cref="SignedCall.Decision"/>).
/// ECDSA P-256 as the nodes' keys (<see cref="NodeKey"/>); unlike theirs it is kept with the job's coordinator state (the
/// actor's state store), so that a coordinator deactivated and placed again signs with the key the members' views carry.
/// Whoever can read the state store can sign decisions; whoever can write it can rewrite the coordinator's whole state.
/// </summary>
public sealed class DecisionKey : IDisposable
{
    private readonly ECDsa _key;

    private DecisionKey(ECDsa key)
    {
        _key = key;
        PublicKey = Convert.ToBase64String(key.ExportSubjectPublicKeyInfo());
    }

    public static DecisionKey Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>The key as kept: base64 PKCS#8. Null when <paramref name="saved"/> is no P-256 private key (the reason in <paramref name="problem"/>).</summary>
    public static DecisionKey? TryImport(string? saved, out string? problem)
    {
        problem = null;
        if (string.IsNullOrEmpty(saved) || saved.Length > 4096)
        {
            problem = "no key, or one over 4096 characters";
            return null;
        }
        var key = ECDsa.Create();
        try
        {
            key.ImportPkcs8PrivateKey(Convert.FromBase64String(saved), out _);
            if (key.KeySize == 256 && key.ExportParameters(false).Curve.Oid.Value == ECCurve.NamedCurves.nistP256.Oid.Value) return new DecisionKey(key);
            problem = "not a NIST P-256 key";
        }
        catch (Exception ex) when (ex is FormatException or CryptographicException)
        {
            problem = "not a base64 PKCS#8 EC private key: " + ex.Message;
        }
        key.Dispose();
        return null;
    }

    /// <summary>What the coordinator's state keeps: base64 PKCS#8.</summary>
    public string Export() => Convert.ToBase64String(_key.ExportPkcs8PrivateKey());

    /// <summary>Base64 SubjectPublicKeyInfo: what the members' views carry.</summary>
    public string PublicKey { get; }

    /// <summary>The signature (IEEE P1363, <see cref="NodeKey.SignatureBytes"/> bytes) of <paramref name="decision"/> in <paramref name="job"/>.</summary>
    public byte[] Sign(string job, RoundDecision decision)
    {
        var signature = new byte[NodeKey.SignatureBytes];
        if (!_key.TrySignData(SignedCall.Decision(job, decision).Bytes(), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation, out int written)
            || written != NodeKey.SignatureBytes)
        {
            throw new CryptographicException("ECDSA P-256 signature of unexpected length");
        }
        return signature;
    }

    /// <summary>Whether <paramref name="coordinatorKey"/> signed <paramref name="decision"/> of <paramref name="job"/> as it stands.</summary>
    public static bool Verify(ECDsa coordinatorKey, string job, RoundDecision decision, ReadOnlySpan<byte> signature) =>
        PublicKeys.Verify(coordinatorKey, SignedCall.Decision(job, decision).Bytes(), signature);

    public void Dispose() => _key.Dispose();
}
