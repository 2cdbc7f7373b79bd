using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace ModelRouting.Quotas;

/// <summary>OpenAI's rate-limit headers (SPEC §14), on every response of a limited request, 429s included.</summary>
internal static class QuotaHeaders
{
    public const string LimitRequests = "x-ratelimit-limit-requests";
    public const string RemainingRequests = "x-ratelimit-remaining-requests";
    public const string ResetRequests = "x-ratelimit-reset-requests";
    public const string LimitTokens = "x-ratelimit-limit-tokens";
    public const string RemainingTokens = "x-ratelimit-remaining-tokens";
    public const string ResetTokens = "x-ratelimit-reset-tokens";

    // The last text written for each header whose value repeats: a limit is the same on every response of its scope,
    // and a reset the same for every response within a millisecond. Each cache is one immutable pair, replaced whole.
    private static CachedText s_limitRequests = new(-1, "");
    private static CachedText s_limitTokens = new(-1, "");
    private static CachedText s_resetRequests = new(-1, "");
    private static CachedText s_resetTokens = new(-1, "");
    private static readonly Func<long, string> s_number = static value => value.ToString(CultureInfo.InvariantCulture);
    private static readonly Func<long, string> s_duration = static ticks => Duration(TimeSpan.FromTicks(ticks));

    public static void Write(IHeaderDictionary headers, RateLimitSnapshot snapshot)
    {
        if (snapshot.LimitRequests is { } requests)
        {
            headers[LimitRequests] = Cached(ref s_limitRequests, requests, s_number);
            headers[RemainingRequests] = snapshot.RemainingRequests.ToString(CultureInfo.InvariantCulture);
            headers[ResetRequests] = Cached(ref s_resetRequests, snapshot.ResetRequests.Ticks, s_duration);
        }

        if (snapshot.LimitTokens is { } tokens)
        {
            headers[LimitTokens] = Cached(ref s_limitTokens, tokens, s_number);
            headers[RemainingTokens] = snapshot.RemainingTokens.ToString(CultureInfo.InvariantCulture);
            headers[ResetTokens] = Cached(ref s_resetTokens, snapshot.ResetTokens.Ticks, s_duration);
        }
    }

    // The cache's text when it holds value, else the text formatted now (and cached).
    private static string Cached(ref CachedText cache, long value, Func<long, string> format)
    {
        var cached = Volatile.Read(ref cache);
        if (cached.Value == value)
        {
            return cached.Text;
        }

        var text = format(value);
        Volatile.Write(ref cache, new CachedText(value, text));
        return text;
    }

    /// <summary>A duration as OpenAI writes it: <c>20ms</c>, <c>1s</c>, <c>1.5s</c>, <c>6m0s</c>.</summary>
    public static string Duration(TimeSpan duration)
    {
        if (duration < TimeSpan.FromSeconds(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, (int)duration.TotalMilliseconds)}ms");
        }

        if (duration.Ticks % TimeSpan.TicksPerMillisecond == 0 && duration < TimeSpan.FromDays(1))
        {
            return WholeMilliseconds(duration.Ticks / TimeSpan.TicksPerMillisecond);
        }

        var seconds = Math.Round(duration.TotalSeconds % 60, 3);
        var minutes = (int)(duration.TotalSeconds / 60);
        return minutes > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{minutes}m{seconds}s")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds}s");
    }

    // What Duration writes for a whole number of milliseconds (the store's resets are), from integers: the same text
    // without the floating-point remainder, rounding and formatting, on every limited response.
    private static string WholeMilliseconds(long milliseconds)
    {
        Span<char> text = stackalloc char[32];
        var length = 0;
        var minutes = milliseconds / 60_000;
        if (minutes > 0)
        {
            minutes.TryFormat(text, out var written, provider: CultureInfo.InvariantCulture);
            length = written;
            text[length++] = 'm';
        }

        var rest = milliseconds % 60_000;
        (rest / 1000).TryFormat(text[length..], out var secondsWritten, provider: CultureInfo.InvariantCulture);
        length += secondsWritten;
        var fraction = (int)(rest % 1000);
        if (fraction > 0)
        {
            text[length++] = '.';
            var digits = 3;
            while (fraction % 10 == 0)
            {
                fraction /= 10;
                digits--;
            }

            fraction.TryFormat(text[length..], out var fractionWritten, digits switch { 3 => "D3", 2 => "D2", _ => "D1" }, CultureInfo.InvariantCulture);
            length += fractionWritten;
        }

        text[length++] = 's';
        return new string(text[..length]);
    }

    private sealed record CachedText(long Value, string Text);
}
