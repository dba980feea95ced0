using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace CqrsInference.Commands.Jobs;

/// <summary>
/// The digest of a job's inputs as the history keeps them (<see cref="V1.JobSubmitted.Inputs"/>), so
/// that whoever reads them back (a backtest) can tell them from inputs changed since.
/// </summary>
/// <remarks>
/// It hashes the inputs' meaning, not their JSON text: PostgreSQL stores events as <c>jsonb</c>, which
/// rewrites numbers (<c>1e-5</c> comes back as <c>0.00001</c>) and spacing. So each tensor's name,
/// datatype, shape and every element are hashed in a canonical form: numbers as the double they read
/// as ("R" format; -0.0 as 0, which is all <c>jsonb</c> keeps of it), strings and booleans as they are.
/// </remarks>
public static class RecordedInputs
{
    /// <summary>The SHA-256, hex, of the tensors' canonical form.</summary>
    public static string Digest(IReadOnlyList<Tensor> tensors)
    {
        var canonical = new StringBuilder();
        foreach (var tensor in tensors)
        {
            canonical.Append(tensor.Name).Append('\u0001').Append(tensor.Datatype).Append('\u0001').Append(string.Join(',', tensor.Shape)).Append('\u0001');
            Append(canonical, tensor.Data);
            canonical.Append('\u0002');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
    }

    /// <summary>Whether <paramref name="tensors"/> are the inputs <paramref name="sha256"/> was taken of.</summary>
    public static bool Verify(IReadOnlyList<Tensor> tensors, string? sha256) => sha256 is not null && Digest(tensors) == sha256;

    private static void Append(StringBuilder canonical, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Array:
                canonical.Append('[');
                foreach (var item in element.EnumerateArray())
                {
                    Append(canonical, item);
                    canonical.Append(',');
                }

                canonical.Append(']');
                break;
            case JsonValueKind.Number:
                // jsonb has no negative zero: -0.0 comes back as 0, so both are hashed as 0.
                var number = element.GetDouble();
                canonical.Append('n').Append((number == 0 ? 0d : number).ToString("R", CultureInfo.InvariantCulture));
                break;
            case JsonValueKind.String:
                canonical.Append('s').Append(element.GetString()!.Length).Append(':').Append(element.GetString());
                break;
            default:
                canonical.Append(element.GetRawText());
                break;
        }
    }
}
