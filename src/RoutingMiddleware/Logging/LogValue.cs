using System.Text;

namespace ModelRouting.Logging;

/// <summary>Makes client-supplied values safe to log: control characters escaped, at most 256 characters.</summary>
internal static class LogValue
{
    private const int MaxLength = 256;

    public static string Sanitize(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }

        var builder = new StringBuilder(Math.Min(value.Length, MaxLength) + 8);
        foreach (var c in value)
        {
            if (builder.Length >= MaxLength)
            {
                return builder.Append('…').ToString();
            }

            if (char.IsControl(c) || c is '\u2028' or '\u2029')
            {
                builder.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }
}
