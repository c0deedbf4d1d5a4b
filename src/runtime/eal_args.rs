//! The EAL command line a profile implies: the profile's own EAL arguments, one device argument per port
//! (`--vdev` for virtual devices, `-a` for PCI addresses), and the main lcore, which is the control thread.

use tandem_config::{GenProfile, Profile};

/// Whether a device string is a PCI address (`0000:03:00.0` or `03:00.0`) rather than vdev arguments.
pub fn is_pci_address(device: &str) -> bool {
    let name = device.split(',').next().unwrap_or(device);
    let parts: Vec<&str> = name.split(':').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit());
    let (bus, devfn) = match parts.as_slice() {
        [domain, bus, devfn] if hex(domain, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    match devfn.split_once('.') {
        Some((dev, func)) => {
            hex(bus, 2) && hex(dev, 2) && func.len() == 1 && func.chars().all(|c| c.is_digit(8))
        }
        None => false,
    }
}

/// The ethdev name DPDK gives a device: the vdev's name (up to the first comma) or the PCI address.
pub fn ethdev_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device)
}

/// The EAL arguments (program name excluded) for `profile`.
pub fn eal_args(profile: &Profile) -> Vec<String> {
    let mut args = profile.dpdk.eal_args.clone();
    args.extend(main_lcore(profile.control.core));
    args.extend(device_args(profile.ports.iter().map(|p| p.device.as_str())));
    args
}

/// The EAL arguments for the generator's profile: its thread is the main lcore, on its `core`.
pub fn gen_eal_args(profile: &GenProfile) -> Vec<String> {
    let mut args = profile.dpdk.eal_args.clone();
    args.extend(main_lcore(profile.core));
    args.extend(device_args(profile.ports.iter().map(|p| p.device.as_str())));
    args
}

/// The main lcore on `core`, or unpinned: EAL would otherwise pin it, and every thread it spawns, to one
/// CPU; the threads that want a core pin themselves.
fn main_lcore(core: Option<usize>) -> [String; 2] {
    let cpus = match core {
        Some(core) => format!("0@{core}"),
        None => {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            format!("0@(0-{})", cpus.saturating_sub(1))
        }
    };
    ["--lcores".to_string(), cpus]
}

/// One device argument per port: `-a` for a PCI address, `--vdev` for a virtual device.
fn device_args<'a>(devices: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut args = Vec::new();
    for device in devices {
        if is_pci_address(device) {
            args.extend(["-a".to_string(), device.to_string()]);
        } else {
            args.push(format!("--vdev={device}"));
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_told_from_vdev_arguments() {
        assert!(is_pci_address("0000:03:00.0"));
        assert!(is_pci_address("03:00.1"));
        assert!(is_pci_address("0000:af:1f.7,rxq_pkt_fill=1"));
        assert!(!is_pci_address("net_pcap0,rx_pcap=a.pcap"));
        assert!(!is_pci_address("net_af_xdp0,iface=veth0"));
        assert!(!is_pci_address("0000:03:00.8"));
        assert!(!is_pci_address("0000:3:00.0"));
    }

    #[test]
    fn ethdev_names_end_at_the_first_comma() {
        assert_eq!(
            ethdev_name("net_pcap0,rx_pcap=/tmp/a.pcap,tx_pcap=/tmp/b.pcap"),
            "net_pcap0"
        );
        assert_eq!(ethdev_name("0000:03:00.0"), "0000:03:00.0");
    }
}
