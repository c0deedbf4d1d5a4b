-- Wireshark/tshark dissector for OpenBSD pfsync version 6, the protocol Tandem speaks between cluster
-- members. Wireshark has no pfsync dissector of its own.
--
-- Decodes the header, every section and every field of every message: CLR, INS_ACK, UPD_C, UPD_REQ, DEL,
-- DEL_C, BUS, INS, UPD and TDB, written from the layouts in Tandem's docs/pfsync-wire.md (OpenBSD's
-- if_pfsync.h), and Tandem's own sections: owner redirect, acknowledged delivery (SEQ, ACK, NACK, EPOCH)
-- and the authentication trailer. Follows OpenBSD's input rules: the packet is cut to the header's length, legacy actions and
-- unknown actions that declare a length and a count are skipped, longer-than-known messages are decoded and
-- their tail shown as extra bytes, and anything OpenBSD would stop at is flagged as an expert error.
--
-- Registered on IP protocol 240 (pfsync's own transport) and UDP port 8240 (Tandem's UDP encapsulation).
-- Use:  tshark -X lua_script:scripts/wireshark/pfsync.lua -r sync.pcap -V
--       tshark -X lua_script:scripts/wireshark/pfsync.lua -r sync.pcap -T fields -e pfsync.action
-- or copy this file into Wireshark's personal Lua plugins folder (Help > About > Folders).

local pfsync = Proto("pfsync", "OpenBSD pfsync v6")

local HEADER_LEN = 20
local SUBHEADER_LEN = 4

-- Action codes (if_pfsync.h PFSYNC_ACT_*), their OpenBSD message sizes, and the retired codes OpenBSD skips.
local action_names = {
    [0] = "CLR", [1] = "OINS", [2] = "INS_ACK", [3] = "OUPD", [4] = "UPD_C", [5] = "UPD_REQ", [6] = "DEL",
    [7] = "DEL_C", [8] = "INS_F", [9] = "DEL_F", [10] = "BUS", [11] = "OTDB", [12] = "EOF", [13] = "INS",
    [14] = "UPD", [15] = "TDB", [0xf0] = "REDIRECT", [0xf1] = "SEQ", [0xf2] = "ACK", [0xf3] = "NACK",
    [0xf4] = "EPOCH",
}
-- Tandem's owner-redirect section (docs/redirect.md): not pfsync; a plain pfsync peer skips it.
local REDIRECT = 0xf0
local AUTH_TRAILER_LEN = 28
local known_len = {
    [0] = 20, [2] = 12, [4] = 84, [5] = 12, [6] = 264, [7] = 12, [10] = 12, [13] = 264, [14] = 264, [15] = 52,
    -- Tandem's acknowledged-delivery sections (docs/sync-delivery.md): not pfsync; a plain peer skips them.
    [0xf1] = 16, [0xf2] = 12, [0xf3] = 16, [0xf4] = 12,
}
local legacy = { [1] = true, [3] = true, [8] = true, [9] = true, [11] = true, [12] = true }

local af_names = { [0] = "unset", [2] = "AF_INET", [24] = "AF_INET6 (OpenBSD)" }
local direction_names = { [0] = "inout", [1] = "in", [2] = "out" }
local bus_status_names = { [1] = "START", [2] = "END" }
local rt_names = { [0] = "none", [1] = "route-to", [2] = "dup-to", [3] = "reply-to" }
local tcp_state_names = {
    [0] = "CLOSED", [1] = "LISTEN", [2] = "SYN_SENT", [3] = "SYN_RECEIVED", [4] = "ESTABLISHED",
    [5] = "CLOSE_WAIT", [6] = "FIN_WAIT_1", [7] = "CLOSING", [8] = "LAST_ACK", [9] = "FIN_WAIT_2",
    [10] = "TIME_WAIT", [11] = "PROXY_SRC", [12] = "PROXY_DST",
}
local timeout_names = {
    [0] = "tcp.first", [1] = "tcp.opening", [2] = "tcp.established", [3] = "tcp.closing", [4] = "tcp.finwait",
    [5] = "tcp.closed", [6] = "udp.first", [7] = "udp.single", [8] = "udp.multiple", [9] = "icmp.first",
    [10] = "icmp.error", [11] = "other.first", [12] = "other.single", [13] = "other.multiple", [14] = "frag",
    [15] = "interval", [16] = "adaptive.start", [17] = "adaptive.end", [18] = "src.track", [19] = "ts.diff",
    [20] = "max", [21] = "purge", [22] = "unlinked",
}

-- Every field, by its filter name without the "pfsync." prefix.
local F = {}
local function field(kind, abbr, name, ...)
    F[abbr] = ProtoField[kind]("pfsync." .. abbr, name, ...)
end

-- Header and subheader.
field("uint8", "version", "Version", base.DEC)
field("uint16", "len", "Length", base.DEC)
field("bytes", "cksum", "Checksum (pfcksum)")
field("uint8", "action", "Action", base.DEC, action_names)
field("uint8", "action_len", "Message length (words)", base.DEC)
field("uint16", "count", "Count", base.DEC)
field("uint16", "redirect.port", "Ingress port (index in the sender's profile)", base.DEC)
field("uint16", "redirect.frame_len", "Frame length", base.DEC)
field("uint8", "auth.version", "Authentication trailer version", base.DEC)
field("uint8", "auth.key_id", "Key id", base.DEC)
field("uint64", "auth.seq", "Sequence number", base.DEC)
field("bytes", "auth.mac", "HMAC-SHA256 (first 16 bytes)")
field("uint32", "delivery.sender", "Stream of host id", base.HEX)
field("uint32", "delivery.epoch", "Epoch", base.HEX)
field("uint32", "delivery.seq", "Packet number", base.DEC)
field("uint32", "delivery.low", "Lowest number still needed", base.DEC)
field("uint32", "delivery.through", "Everything received through", base.DEC)
field("uint32", "delivery.first", "First missing", base.DEC)
field("uint32", "delivery.last", "Last missing", base.DEC)
field("bytes", "skipped", "Skipped section")
field("bytes", "extra", "Bytes beyond the known message size")

-- One side of a state (struct pfsync_state_peer), under each prefix that carries one.
local peer_prefixes = { "upd_c.src", "upd_c.dst", "state.src", "state.dst" }
for _, p in ipairs(peer_prefixes) do
    field("uint16", p .. ".scrub.flags", "Scrub flags", base.HEX)
    field("uint8", p .. ".scrub.ttl", "Scrub TTL", base.DEC)
    field("uint8", p .. ".scrub.valid", "Scrub valid", base.DEC)
    field("uint32", p .. ".scrub.ts_mod", "Scrub timestamp modulator", base.DEC)
    field("uint32", p .. ".seqlo", "seqlo", base.DEC)
    field("uint32", p .. ".seqhi", "seqhi", base.DEC)
    field("uint32", p .. ".seqdiff", "seqdiff", base.DEC)
    field("uint16", p .. ".max_win", "Max window", base.DEC)
    field("uint16", p .. ".mss", "MSS", base.DEC)
    field("uint8", p .. ".state", "State", base.DEC, tcp_state_names)
    field("uint8", p .. ".wscale", "Window scale", base.HEX)
end

-- Messages that only name a state.
for _, p in ipairs({ "ins_ack", "upd_req", "del_c" }) do
    field("uint64", p .. ".id", "State id", base.HEX)
    field("uint32", p .. ".creatorid", "Creator id", base.HEX)
end

-- CLR.
field("stringz", "clr.ifname", "Interface")
field("uint32", "clr.creatorid", "Creator id", base.HEX)

-- UPD_C.
field("uint64", "upd_c.id", "State id", base.HEX)
field("uint32", "upd_c.creatorid", "Creator id", base.HEX)
field("uint32", "upd_c.expire", "Expire", base.DEC)
field("uint8", "upd_c.timeout", "Timeout", base.DEC, timeout_names)
field("uint8", "upd_c.state_flags", "State flags", base.HEX)

-- Full state (INS, UPD, DEL) and its two keys.
for _, k in ipairs({ "state.key0", "state.key1" }) do
    for _, i in ipairs({ "0", "1" }) do
        field("ipv4", k .. ".addr" .. i, "Address " .. i)
        field("ipv6", k .. ".addr" .. i .. "_v6", "Address " .. i)
        field("bytes", k .. ".addr" .. i .. "_raw", "Address " .. i .. " (unknown family)")
        field("uint16", k .. ".port" .. i, "Port " .. i, base.DEC)
    end
    field("uint16", k .. ".rdomain", "Routing domain", base.DEC)
    field("uint8", k .. ".af", "Address family", base.DEC, af_names)
end
field("uint64", "state.id", "State id", base.HEX)
field("stringz", "state.ifname", "Interface")
field("ipv4", "state.rt_addr", "Route-to address")
field("ipv6", "state.rt_addr_v6", "Route-to address")
field("bytes", "state.rt_addr_raw", "Route-to address (unknown family)")
field("uint32", "state.rule", "Rule", base.DEC)
field("uint32", "state.anchor", "Anchor", base.DEC)
field("uint32", "state.nat_rule", "NAT rule", base.DEC)
field("uint32", "state.creation", "Age (s)", base.DEC)
field("uint32", "state.expire", "Expires in (s)", base.DEC)
field("uint64", "state.packets0", "Packets, state direction", base.DEC)
field("uint64", "state.packets1", "Packets, reverse direction", base.DEC)
field("uint64", "state.bytes0", "Bytes, state direction", base.DEC)
field("uint64", "state.bytes1", "Bytes, reverse direction", base.DEC)
field("uint32", "state.creatorid", "Creator id", base.HEX)
field("int32", "state.rtableid0", "Routing table, wire key", base.DEC)
field("int32", "state.rtableid1", "Routing table, stack key", base.DEC)
field("uint16", "state.max_mss", "Max MSS", base.DEC)
field("uint8", "state.af", "Address family", base.DEC, af_names)
field("uint8", "state.proto", "Protocol", base.DEC)
field("uint8", "state.direction", "Direction", base.DEC, direction_names)
field("uint8", "state.log", "Log", base.HEX)
field("uint8", "state.rt", "Route type", base.DEC, rt_names)
field("uint8", "state.timeout", "Timeout", base.DEC, timeout_names)
field("uint8", "state.sync_flags", "Sync flags", base.HEX)
field("uint8", "state.updates", "Updates", base.DEC)
field("uint8", "state.min_ttl", "Min TTL", base.DEC)
field("uint8", "state.set_tos", "Set TOS", base.HEX)
field("uint16", "state.state_flags", "State flags", base.HEX)
field("uint8", "state.set_prio0", "Priority", base.DEC)
field("uint8", "state.set_prio1", "Priority, low delay", base.DEC)

-- BUS.
field("uint32", "bus.creatorid", "Creator id", base.HEX)
field("uint32", "bus.endtime", "End time", base.DEC)
field("uint8", "bus.status", "Status", base.DEC, bus_status_names)

-- TDB.
field("uint32", "tdb.spi", "SPI", base.HEX)
field("uint8", "tdb.dst.len", "Destination sa_len", base.DEC)
field("uint8", "tdb.dst.family", "Destination family", base.DEC, af_names)
field("uint16", "tdb.dst.port", "Destination port", base.DEC)
field("ipv4", "tdb.dst.addr", "Destination")
field("uint32", "tdb.dst.flowinfo", "Destination flow info", base.HEX)
field("ipv6", "tdb.dst.addr_v6", "Destination")
field("uint32", "tdb.dst.scope_id", "Destination scope id", base.DEC)
field("uint64", "tdb.rpl", "Replay counter", base.DEC)
field("uint64", "tdb.cur_bytes", "Bytes", base.DEC)
field("uint8", "tdb.sproto", "Security protocol", base.DEC)
field("uint8", "tdb.updates", "Updates", base.DEC)
field("uint16", "tdb.rdomain", "Routing domain", base.DEC)

local field_list = {}
for _, f in pairs(F) do
    field_list[#field_list + 1] = f
end
pfsync.fields = field_list

-- The input counters OpenBSD would bump (netstat -s -p pfsync).
local E = {
    hdrops = ProtoExpert.new("pfsync.hdrops", "Shorter than the pfsync header", expert.group.MALFORMED,
        expert.severity.ERROR),
    badver = ProtoExpert.new("pfsync.badver", "Not pfsync version 6", expert.group.PROTOCOL,
        expert.severity.ERROR),
    badlen = ProtoExpert.new("pfsync.badlen", "Length disagrees with the packet", expert.group.MALFORMED,
        expert.severity.ERROR),
    badact = ProtoExpert.new("pfsync.badact", "Action neither parsable nor skippable", expert.group.PROTOCOL,
        expert.severity.ERROR),
    badval = ProtoExpert.new("pfsync.badval", "Value OpenBSD refuses", expert.group.PROTOCOL,
        expert.severity.WARN),
    skipped = ProtoExpert.new("pfsync.skipped.note", "Section skipped (legacy or unknown action)",
        expert.group.PROTOCOL, expert.severity.NOTE),
}
pfsync.experts = { E.hdrops, E.badver, E.badlen, E.badact, E.badval, E.skipped }

local function add(tree, name, range)
    return tree:add(F[name], range)
end

local function peer(tree, tvb, off, prefix, label)
    local t = tree:add(pfsync, tvb(off, 32), label)
    t:set_text(label .. ": " .. (tcp_state_names[tvb(off + 24, 1):uint()] or tvb(off + 24, 1):uint()) ..
        " seq " .. tvb(off + 8, 4):uint() .. ":" .. tvb(off + 12, 4):uint())
    add(t, prefix .. ".scrub.flags", tvb(off, 2))
    add(t, prefix .. ".scrub.ttl", tvb(off + 2, 1))
    add(t, prefix .. ".scrub.valid", tvb(off + 3, 1))
    add(t, prefix .. ".scrub.ts_mod", tvb(off + 4, 4))
    add(t, prefix .. ".seqlo", tvb(off + 8, 4))
    add(t, prefix .. ".seqhi", tvb(off + 12, 4))
    add(t, prefix .. ".seqdiff", tvb(off + 16, 4))
    add(t, prefix .. ".max_win", tvb(off + 20, 2))
    add(t, prefix .. ".mss", tvb(off + 22, 2))
    local state = add(t, prefix .. ".state", tvb(off + 24, 1))
    if tvb(off + 24, 1):uint() > 12 then
        state:add_proto_expert_info(E.badval, "peer state above PF_TCPS_PROXY_DST (12)")
    end
    add(t, prefix .. ".wscale", tvb(off + 25, 1))
end

-- A 16-byte pf_addr as the family says: IPv4 in the first four bytes, IPv6 in all sixteen.
local function address(tree, tvb, off, name, af)
    if af == 2 then
        add(tree, name, tvb(off, 4))
    elseif af == 24 then
        add(tree, name .. "_v6", tvb(off, 16))
    else
        add(tree, name .. "_raw", tvb(off, 16))
    end
end

local function timeout(tree, name, range)
    local item = add(tree, name, range)
    if range:uint() >= 20 then
        item:add_proto_expert_info(E.badval, "timeout at or above PFTM_MAX (20)")
    end
end

local decode = {}

local function state_ref(prefix)
    return function(tree, tvb, off)
        add(tree, prefix .. ".id", tvb(off, 8))
        add(tree, prefix .. ".creatorid", tvb(off + 8, 4))
        return "id " .. tvb(off, 8):uint64():tohex() .. " creator " .. tvb(off + 8, 4):bytes():tohex():lower()
    end
end

decode[0] = function(tree, tvb, off)
    add(tree, "clr.ifname", tvb(off, 16))
    add(tree, "clr.creatorid", tvb(off + 16, 4))
    return "creator " .. tvb(off + 16, 4):bytes():tohex():lower()
end
decode[2] = state_ref("ins_ack")
decode[5] = state_ref("upd_req")
decode[7] = state_ref("del_c")

decode[4] = function(tree, tvb, off)
    add(tree, "upd_c.id", tvb(off, 8))
    peer(tree, tvb, off + 8, "upd_c.src", "Source peer")
    peer(tree, tvb, off + 40, "upd_c.dst", "Destination peer")
    add(tree, "upd_c.creatorid", tvb(off + 72, 4))
    add(tree, "upd_c.expire", tvb(off + 76, 4))
    timeout(tree, "upd_c.timeout", tvb(off + 80, 1))
    add(tree, "upd_c.state_flags", tvb(off + 81, 1))
    return "id " .. tvb(off, 8):uint64():tohex() .. " creator " .. tvb(off + 72, 4):bytes():tohex():lower()
end

local function state_key(tree, tvb, off, prefix, label, state_af)
    local t = tree:add(pfsync, tvb(off, 40), label)
    local af = tvb(off + 38, 1):uint()
    -- Old senders leave the key's family 0; the state's applies then.
    local effective = af ~= 0 and af or state_af
    address(t, tvb, off, prefix .. ".addr0", effective)
    address(t, tvb, off + 16, prefix .. ".addr1", effective)
    add(t, prefix .. ".port0", tvb(off + 32, 2))
    add(t, prefix .. ".port1", tvb(off + 34, 2))
    add(t, prefix .. ".rdomain", tvb(off + 36, 2))
    local item = add(t, prefix .. ".af", tvb(off + 38, 1))
    if af ~= 0 and af ~= 2 and af ~= 24 then
        item:add_proto_expert_info(E.badval, "address family neither AF_INET (2) nor OpenBSD's AF_INET6 (24)")
    end
end

local function full_state(tree, tvb, off)
    local af = tvb(off + 250, 1):uint()
    add(tree, "state.id", tvb(off, 8))
    add(tree, "state.ifname", tvb(off + 8, 16))
    state_key(tree, tvb, off + 24, "state.key0", "Wire key", af)
    state_key(tree, tvb, off + 64, "state.key1", "Stack key", af)
    peer(tree, tvb, off + 104, "state.src", "Source peer")
    peer(tree, tvb, off + 136, "state.dst", "Destination peer")
    address(tree, tvb, off + 168, "state.rt_addr", af)
    add(tree, "state.rule", tvb(off + 184, 4))
    add(tree, "state.anchor", tvb(off + 188, 4))
    add(tree, "state.nat_rule", tvb(off + 192, 4))
    add(tree, "state.creation", tvb(off + 196, 4))
    add(tree, "state.expire", tvb(off + 200, 4))
    -- Each counter is a high and a low big-endian word: one big-endian 64-bit number.
    add(tree, "state.packets0", tvb(off + 204, 8))
    add(tree, "state.packets1", tvb(off + 212, 8))
    add(tree, "state.bytes0", tvb(off + 220, 8))
    add(tree, "state.bytes1", tvb(off + 228, 8))
    add(tree, "state.creatorid", tvb(off + 236, 4))
    add(tree, "state.rtableid0", tvb(off + 240, 4))
    add(tree, "state.rtableid1", tvb(off + 244, 4))
    add(tree, "state.max_mss", tvb(off + 248, 2))
    local af_item = add(tree, "state.af", tvb(off + 250, 1))
    if af ~= 2 and af ~= 24 then
        af_item:add_proto_expert_info(E.badval, "address family neither AF_INET (2) nor OpenBSD's AF_INET6 (24)")
    end
    add(tree, "state.proto", tvb(off + 251, 1))
    add(tree, "state.direction", tvb(off + 252, 1))
    add(tree, "state.log", tvb(off + 253, 1))
    add(tree, "state.rt", tvb(off + 254, 1))
    timeout(tree, "state.timeout", tvb(off + 255, 1))
    add(tree, "state.sync_flags", tvb(off + 256, 1))
    add(tree, "state.updates", tvb(off + 257, 1))
    add(tree, "state.min_ttl", tvb(off + 258, 1))
    add(tree, "state.set_tos", tvb(off + 259, 1))
    add(tree, "state.state_flags", tvb(off + 260, 2))
    add(tree, "state.set_prio0", tvb(off + 262, 1))
    add(tree, "state.set_prio1", tvb(off + 263, 1))
    return "id " .. tvb(off, 8):uint64():tohex() .. " creator " .. tvb(off + 236, 4):bytes():tohex():lower() ..
        " proto " .. tvb(off + 251, 1):uint()
end
decode[6] = full_state
decode[13] = full_state
decode[14] = full_state

decode[10] = function(tree, tvb, off)
    add(tree, "bus.creatorid", tvb(off, 4))
    add(tree, "bus.endtime", tvb(off + 4, 4))
    add(tree, "bus.status", tvb(off + 8, 1))
    return (bus_status_names[tvb(off + 8, 1):uint()] or "status " .. tvb(off + 8, 1):uint())
end

decode[15] = function(tree, tvb, off)
    add(tree, "tdb.spi", tvb(off, 4))
    local family = tvb(off + 5, 1):uint()
    add(tree, "tdb.dst.len", tvb(off + 4, 1))
    local family_item = add(tree, "tdb.dst.family", tvb(off + 5, 1))
    add(tree, "tdb.dst.port", tvb(off + 6, 2))
    if family == 2 then
        add(tree, "tdb.dst.addr", tvb(off + 8, 4))
    elseif family == 24 then
        add(tree, "tdb.dst.flowinfo", tvb(off + 8, 4))
        add(tree, "tdb.dst.addr_v6", tvb(off + 12, 16))
        add(tree, "tdb.dst.scope_id", tvb(off + 28, 4))
    else
        family_item:add_proto_expert_info(E.badval, "destination family neither AF_INET nor AF_INET6")
    end
    add(tree, "tdb.rpl", tvb(off + 32, 8))
    add(tree, "tdb.cur_bytes", tvb(off + 40, 8))
    add(tree, "tdb.sproto", tvb(off + 48, 1))
    add(tree, "tdb.updates", tvb(off + 49, 1))
    add(tree, "tdb.rdomain", tvb(off + 50, 2))
    return "spi " .. tvb(off, 4):bytes():tohex():lower()
end

-- Tandem's acknowledged delivery: every message starts with the stream's host id and epoch.
local function delivery(fields)
    return function(tree, tvb, off)
        add(tree, "delivery.sender", tvb(off, 4))
        add(tree, "delivery.epoch", tvb(off + 4, 4))
        local text = "stream " .. tvb(off, 4):bytes():tohex():lower()
        for i, f in ipairs(fields) do
            add(tree, "delivery." .. f, tvb(off + 4 + 4 * i, 4))
            text = text .. " " .. f .. " " .. tvb(off + 4 + 4 * i, 4):uint()
        end
        return text
    end
end
decode[0xf1] = delivery({ "seq", "low" })
decode[0xf2] = delivery({ "through" })
decode[0xf3] = delivery({ "first", "last" })
decode[0xf4] = delivery({ "low" })

function pfsync.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol = "PFSYNC"
    local available = tvb:reported_length_remaining()
    local root = tree:add(pfsync, tvb())
    if available < HEADER_LEN then
        root:add_proto_expert_info(E.hdrops)
        pinfo.cols.info = "pfsync: short header"
        return
    end
    local version = tvb(0, 1):uint()
    add(root, "version", tvb(0, 1))
    if version ~= 6 then
        root:add_proto_expert_info(E.badver)
        pinfo.cols.info = "pfsync version " .. version
        return
    end
    local len = tvb(2, 2):uint()
    local len_item = add(root, "len", tvb(2, 2))
    add(root, "cksum", tvb(4, 16))
    if len > available or len < HEADER_LEN then
        len_item:add_proto_expert_info(E.badlen)
        pinfo.cols.info = "pfsync v6 len " .. len .. " (bad length)"
        return
    end
    root:set_len(len)

    local summary = {}
    local off = HEADER_LEN
    -- OpenBSD's input loop: sections until fewer than a subheader's bytes remain (pfsync_input).
    while off + SUBHEADER_LEN <= len do
        local action = tvb(off, 1):uint()
        local mlen = tvb(off + 1, 1):uint() * 4
        local count = tvb(off + 2, 2):uint()
        local name = action_names[action] or ("action " .. action)
        local section = root:add(pfsync, tvb(off, len - off), name .. " section")
        add(section, "action", tvb(off, 1))
        add(section, "action_len", tvb(off + 1, 1))
        add(section, "count", tvb(off + 2, 2))
        local known = known_len[action]
        local skip = false
        if known == nil or mlen < known then
            if legacy[action] then
                skip = true
            elseif count > 0 and mlen > 0 then
                skip = true
            else
                section:add_proto_expert_info(E.badact)
                summary[#summary + 1] = name .. " (bad action)"
                break
            end
        end
        off = off + SUBHEADER_LEN
        local body = mlen * count
        if off + body > len then
            section:add_proto_expert_info(E.badlen, "section needs " .. body .. " bytes, " .. (len - off) .. " left")
            summary[#summary + 1] = name .. " (truncated)"
            break
        end
        section:set_len(SUBHEADER_LEN + body)
        section:set_text(name .. ": " .. count .. " x " .. mlen .. " bytes" .. (skip and " (skipped)" or ""))
        local frame_len = (action == REDIRECT and mlen == 4 and body >= 4) and tvb(off + 2, 2):uint() or nil
        if frame_len and frame_len > 0 and frame_len <= body - 4 and body - 4 - frame_len <= 3 then
            -- A data frame redirected to the node that owns its state: its port, then the frame itself.
            section:set_text("REDIRECT (Tandem owner redirect): port " .. tvb(off, 2):uint() .. ", "
                .. frame_len .. "-byte frame")
            add(section, "redirect.port", tvb(off, 2))
            add(section, "redirect.frame_len", tvb(off + 2, 2))
            Dissector.get("eth_withoutfcs"):call(tvb(off + 4, frame_len):tvb(), pinfo, tree)
            summary[#summary + 1] = "REDIRECT " .. frame_len .. " bytes"
            off = off + body
            goto continue
        end
        if skip then
            if body > 0 then
                add(section, "skipped", tvb(off, body))
            end
            section:add_proto_expert_info(E.skipped)
        else
            for i = 0, count - 1 do
                local at = off + i * mlen
                local message = section:add(pfsync, tvb(at, mlen), name)
                local text = decode[action](message, tvb, at)
                message:set_text(name .. " " .. text)
                if mlen > known then
                    add(message, "extra", tvb(at + known, mlen - known))
                end
            end
        end
        summary[#summary + 1] = name .. " x" .. count
        off = off + body
        ::continue::
    end
    -- Tandem's authentication trailer (docs/sync-auth.md): "TA", version, key id, sequence, 16-byte MAC,
    -- right after the pfsync packet and ending the datagram.
    if available - len == AUTH_TRAILER_LEN and tvb(len, 2):string() == "TA" then
        local trailer = tree:add(pfsync, tvb(len, AUTH_TRAILER_LEN), "Tandem authentication trailer")
        add(trailer, "auth.version", tvb(len + 2, 1))
        add(trailer, "auth.key_id", tvb(len + 3, 1))
        add(trailer, "auth.seq", tvb(len + 4, 8))
        add(trailer, "auth.mac", tvb(len + 12, 16))
        trailer:set_text("Tandem authentication: key " .. tvb(len + 3, 1):uint() .. ", sequence "
            .. tvb(len + 4, 8):uint64():tonumber())
        summary[#summary + 1] = "authenticated (key " .. tvb(len + 3, 1):uint() .. ")"
    end
    pinfo.cols.info = "pfsync v6 len " .. len .. ": " .. table.concat(summary, ", ")
end

DissectorTable.get("ip.proto"):add(240, pfsync)
DissectorTable.get("udp.port"):add(8240, pfsync)
