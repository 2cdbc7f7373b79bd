namespace ModelRouting.Quotas;

/// <summary>
/// A count over the last 60 s, kept in quarter-second slots: what was added leaves the window between 60 and
/// 60.25 s later (the slot it was added in, and the 240 after it), never sooner, so no 60 s of real time ever holds
/// more than the limit. Unlike a fixed window it never admits twice the limit around a boundary, and unlike a
/// token bucket no burst above the limit builds up. An amount added earlier can be corrected in its own slot (a
/// token reservation made good to the backend's usage). Not thread-safe: the store serializes access.
/// </summary>
internal sealed class SlidingWindow
{
    /// <summary>The window's length.</summary>
    public static readonly TimeSpan Length = TimeSpan.FromSeconds(60);

    internal const long SlotMilliseconds = 250;
    private const int Slots = 241;

    private readonly long[] _amounts = new long[Slots];
    private readonly long[] _slotOf = new long[Slots];
    private long _sum;
    private long _expiredUpTo = long.MinValue;
    private long _newestSlot = long.MinValue;

    public SlidingWindow()
    {
        Array.Fill(_slotOf, long.MinValue);
    }

    /// <summary>Gets the amount inside the window at <paramref name="now"/> (ms).</summary>
    public long Used(long now)
    {
        Expire(now / SlotMilliseconds);
        return _sum;
    }

    public void Add(long now, long amount)
    {
        var slot = now / SlotMilliseconds;
        Expire(slot);
        var index = (int)(slot % Slots);
        if (_slotOf[index] != slot)
        {
            _sum -= _amounts[index];
            _amounts[index] = 0;
            _slotOf[index] = slot;
        }

        _amounts[index] += amount;
        _sum += amount;
        _newestSlot = slot;
    }

    /// <summary>Changes what was added at <paramref name="at"/> by <paramref name="delta"/>, if that slot is still in the window.</summary>
    public void Correct(long at, long now, long delta)
    {
        var slot = at / SlotMilliseconds;
        Expire(now / SlotMilliseconds);
        var index = (int)(slot % Slots);
        if (_slotOf[index] != slot)
        {
            return; // already left the window: nothing of it counts any more
        }

        var corrected = Math.Max(0, _amounts[index] + delta);
        _sum += corrected - _amounts[index];
        _amounts[index] = corrected;
    }

    /// <summary>How long until the window holds at most <paramref name="allowed"/> (ms from <paramref name="now"/>).</summary>
    public long UntilAtMost(long now, long allowed)
    {
        var current = now / SlotMilliseconds;
        Expire(current);
        var excess = _sum - allowed;
        if (excess <= 0)
        {
            return 0;
        }

        // Oldest slot first: each leaves the window at its start + 60 s.
        for (var slot = current - Slots + 1; slot <= current; slot++)
        {
            var index = (int)(((slot % Slots) + Slots) % Slots);
            if (_slotOf[index] == slot && _amounts[index] > 0)
            {
                excess -= _amounts[index];
                if (excess <= 0)
                {
                    return ((slot + Slots) * SlotMilliseconds) - now;
                }
            }
        }

        return (long)Length.TotalMilliseconds;
    }

    /// <summary>
    /// How long until everything now in the window has left it (OpenAI's "reset to its initial state"): when the
    /// newest slot that was added to leaves. Constant time: it is on every limited response's headers.
    /// </summary>
    public long UntilEmpty(long now)
    {
        Expire(now / SlotMilliseconds);
        return _sum <= 0 ? 0 : Math.Max(0, ((_newestSlot + Slots) * SlotMilliseconds) - now);
    }

    private void Expire(long current)
    {
        var oldestValid = current - Slots + 1;
        if (_expiredUpTo >= oldestValid - 1)
        {
            return;
        }

        for (var i = 0; i < Slots; i++)
        {
            if (_slotOf[i] < oldestValid && _amounts[i] != 0)
            {
                _sum -= _amounts[i];
                _amounts[i] = 0;
            }
        }

        _expiredUpTo = oldestValid - 1;
    }
}
