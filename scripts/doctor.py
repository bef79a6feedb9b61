"""What this machine gives nasnet_rl; see nasnet_rl/cli/doctor.py."""

from nasnet_rl.cli import doctor

if __name__ == "__main__":
  doctor.run()
