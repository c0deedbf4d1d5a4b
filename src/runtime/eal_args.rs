//! The EAL command line a profile implies: the profile's own EAL arguments, one device argument per port
//! (`--vdev` for virtual devices, `-a` for PCI addresses), and the main lcore, which is the control thread.

use tandem_config::Profile;

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
    // The main lcore is the control thread. Unpinned by default: EAL would otherwise pin it, and every thread
    // it spawns, to one CPU; the threads that want a core pin themselves.
    match profile.control.core {
        Some(core) => args.extend(["--lcores".to_string(), format!("0@{core}")]),
        None => {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            args.extend([
                "--lcores".to_string(),
                format!("0@(0-{})", cpus.saturating_sub(1)),
            ]);
        }
    }
    for port in &profile.ports {
        if is_pci_address(&port.device) {
            args.extend(["-a".to_string(), port.device.clone()]);
        } else {
            args.push(format!("--vdev={}", port.device));
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
