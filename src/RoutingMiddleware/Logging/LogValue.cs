using System.Globalization;
using System.Text;

namespace ModelRouting.Logging;

/// <summary>
/// Makes a client-supplied value (a path, a model name, an id, an alias, a key name) safe to put in a log
/// line (SPEC §12): control characters, line breaks, format characters (bidirectional overrides, zero-width
/// characters), unpaired surrogates and other non-printables are escaped as <c>\uXXXX</c>, a backslash as
/// <c>\\</c>, and the result is cut to at most <see cref="MaxLength"/> characters, ending with "…" when cut.
/// Never pass a secret: escaping does not hide it.
/// </summary>
internal static class LogValue
{
    /// <summary>The longest string <see cref="Sanitize"/> returns.</summary>
    public const int MaxLength = 256;

    private const char Ellipsis = '…';

    /// <summary>Returns <paramref name="value"/> escaped and truncated for a log line; null gives an empty string.</summary>
    public static string Sanitize(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }

        if (value.Length <= MaxLength && IsClean(value))
        {
            return value;
        }

        var builder = new StringBuilder(Math.Min(value.Length, MaxLength) + 8);
        var fitting = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, value[i + 1]));
                if (IsPrintable(category))
                {
                    builder.Append(c).Append(value[++i]);
                }
                else
                {
                    builder.Append(Escape(c)).Append(Escape(value[++i]));
                }
            }
            else if (c == '\\')
            {
                builder.Append(@"\\");
            }
            else if (NeedsEscape(c))
            {
                builder.Append(Escape(c));
            }
            else
            {
                builder.Append(c);
            }

            // Cut only between whole pieces (never inside an escape or a surrogate pair), leaving room for "…".
            if (builder.Length <= MaxLength - 1)
            {
                fitting = builder.Length;
            }

            if (builder.Length > MaxLength)
            {
                builder.Length = fitting;
                return builder.Append(Ellipsis).ToString();
            }
        }

        return builder.ToString();
    }

    private static bool IsClean(string value)
    {
        foreach (var c in value)
        {
            if (c == '\\' || NeedsEscape(c) || char.IsSurrogate(c))
            {
                return false;
            }
        }

        return true;
    }

    private static bool NeedsEscape(char c) =>
        c < ' ' || (c >= '\u007F' && !IsPrintable(CharUnicodeInfo.GetUnicodeCategory(c)));

    private static bool IsPrintable(UnicodeCategory category) => category is not (
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
        or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
        or UnicodeCategory.OtherNotAssigned);

    private static string Escape(char c) => string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
}
