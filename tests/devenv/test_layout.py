import socket

from modelreg.devenv.layout import PORT_NAMES, Layout, free_ports


def test_ports_are_allocated_once_and_kept(tmp_path):
    layout = Layout(tmp_path / "env")
    layout.ensure()
    first = layout.allocate_ports()
    assert layout.allocate_ports() == first
    assert len({getattr(first, n) for n in PORT_NAMES}) == len(PORT_NAMES)


def test_corrupt_state_reallocates(tmp_path):
    layout = Layout(tmp_path)
    layout.ensure()
    layout.state_file.write_text("{not json")
    assert layout.load_ports() is None
    assert layout.allocate_ports() == layout.load_ports()


def test_free_ports_are_bindable():
    for port in free_ports(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_pki_dir_is_private(tmp_path):
    layout = Layout(tmp_path)
    layout.ensure()
    assert layout.pki.stat().st_mode & 0o077 == 0


def test_ports_added_later_are_allocated_and_saved_ones_kept(tmp_path):
    import json

    layout = Layout(tmp_path)
    layout.ensure()
    first = layout.allocate_ports()
    raw = json.loads(layout.state_file.read_text())
    del raw["ports"]["operator_health"]
    layout.state_file.write_text(json.dumps(raw))
    again = layout.load_ports()
    assert again is not None
    assert again.etcd == first.etcd
    assert again.operator_health not in {
        getattr(first, n) for n in PORT_NAMES if n != "operator_health"
    }
    assert layout.load_ports() == again
